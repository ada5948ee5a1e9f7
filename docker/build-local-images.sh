#!/usr/bin/env bash
# Builds, with podman and no image registry, every image docker-compose.yml names:
#   1. a Debian bookworm base (debootstrap from Debian's mirror, slimmed, `podman import`);
#   2. a Rust builder base from the host's toolchain (stands in for rust:*-slim-bookworm);
#   3. stand-ins for postgres, temporalio/server, temporalio/admin-tools, temporalio/ui, from
#      the same binaries/packages the native stack uses, tagged with the official names;
#   4. the Bulwark images from docker/Dockerfile (targets init, control, api, worker, gate).
# Idempotent: an image whose inputs are unchanged (hash label) is not rebuilt, and the
# Bulwark build reuses podman's layer cache and a cargo registry cache mount.
#
#   docker/build-local-images.sh [base|standins|bulwark|all]   (default all)
#
# Needs: podman (runc, netavark), debootstrap, the native stack's binaries
# (scripts/install.sh: ~/.cache/bulwark/bin/temporal-<v>/{server,sql}, the Temporal CLI venv),
# a ui-server build (made here with `go install` from the Go module proxy when missing).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/versions.env
source "$ROOT/scripts/versions.env"
# shellcheck source=images.env
source "$ROOT/docker/images.env"
CACHE=${BULWARK_CACHE_DIR:-$HOME/.cache/bulwark}
WORK=${BULWARK_IMAGE_WORKDIR:-/var/tmp/bulwark-images}
TEMPORAL_BIN_DIR="$CACHE/bin/temporal-$TEMPORAL_SERVER_VERSION"
TEMPORAL_CLI="$CACHE/venv-temporalio-$PY_TEMPORALIO_VERSION/bin/temporal"
UI_VERSION=${TEMPORAL_UI_IMAGE##*:}
UI_BIN="$CACHE/bin/temporal-ui-v$UI_VERSION/server"
DEBIAN_MIRROR=${BULWARK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
what=${1:-all}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
mkdir -p "$WORK" "$WORK/logs"

# Certificate bundle podman builds mount for downloads (an egress proxy's CA, when the host
# trusts one); never copied into an image.
HOST_CA=${BULWARK_BUILD_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}

image_hash() { podman image inspect --format '{{index .Labels "bulwark.input-hash"}}' "$1" 2>/dev/null || true; }
hash_inputs() { # hash_inputs PATH... : content hash of files/dirs (names + bytes)
  local p
  for p in "$@"; do
    if [[ -d $p ]]; then (cd "$p" && find . -type f -print0 | sort -z | xargs -0 sha256sum); else sha256sum <"$p"; fi
  done | sha256sum | cut -c1-16
}

# build_cached TAG CONTEXT HASH [podman build args...]
build_cached() {
  local tag=$1 ctx=$2 hash=$3; shift 3
  if [[ $(image_hash "$tag") == "$hash" ]]; then log "cached   $tag"; return; fi
  log "building $tag"
  local t0=$SECONDS
  podman build --layers --label "bulwark.input-hash=$hash" -t "$tag" "$@" "$ctx" >"$WORK/logs/${tag//[\/:]/_}.log" 2>&1 \
    || { tail -30 "$WORK/logs/${tag//[\/:]/_}.log" >&2; die "building $tag failed (log: $WORK/logs/${tag//[\/:]/_}.log)"; }
  log "built    $tag in $((SECONDS - t0))s"
}

# --- 1. Debian base ----------------------------------------------------------------------
base() {
  local rootfs="$WORK/debian-bookworm.tar" hash
  if [[ ! -s $rootfs ]]; then
    command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install debootstrap)"
    log "debootstrap bookworm (minbase) from $DEBIAN_MIRROR"
    local dir="$WORK/rootfs"
    if [[ ! -f $dir.complete ]]; then
      rm -rf "$dir"
      debootstrap --variant=minbase --include=ca-certificates bookworm "$dir" "$DEBIAN_MIRROR" \
        >"$WORK/logs/debootstrap.log" 2>&1 || { tail -20 "$WORK/logs/debootstrap.log" >&2; die "debootstrap failed"; }
      touch "$dir.complete"
    fi
    # Slim like debian:*-slim: no documentation, manuals or translations, now or later.
    cat >"$dir/etc/dpkg/dpkg.cfg.d/bulwark-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    cat >"$dir/etc/apt/apt.conf.d/bulwark-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
    find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$dir"/usr/share/{man,info,locale,lintian}/* "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin \
      "$dir"/var/cache/apt/archives/*.deb "$dir"/var/log/* "$dir"/tmp/*
    : >"$dir/etc/machine-id"
    tar --numeric-owner -C "$dir" -cf "$rootfs.tmp" . && mv "$rootfs.tmp" "$rootfs"
    rm -rf "$dir" "$dir.complete"
  fi
  hash=$(sha256sum <"$rootfs" | cut -c1-16)
  if [[ $(image_hash "$LOCAL_DEBIAN_IMAGE") != "$hash" ]]; then
    log "importing $LOCAL_DEBIAN_IMAGE"
    podman import --change 'CMD ["/bin/bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "LABEL bulwark.input-hash=$hash" \
      --change 'LABEL org.opencontainers.image.description="Debian bookworm minbase via debootstrap, slimmed"' \
      "$rootfs" "$LOCAL_DEBIAN_IMAGE" >/dev/null
  else
    log "cached   $LOCAL_DEBIAN_IMAGE"
  fi

  # Rust builder from the host toolchain (no docs: ~600 MB instead of 1.4 GB).
  local tc ctx="$WORK/ctx/rust"
  tc=$(readlink -f "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/stable-x86_64-unknown-linux-gnu") \
    || die "no stable Rust toolchain under ~/.rustup"
  hash=$( { rustc --version; cat "$ROOT/docker/builder/Containerfile"; image_hash "$LOCAL_DEBIAN_IMAGE"; } | sha256sum | cut -c1-16)
  if [[ $(image_hash "$LOCAL_RUST_IMAGE") != "$hash" ]]; then
    rm -rf "$ctx"; mkdir -p "$ctx/toolchain"
    cp -al "$tc/bin" "$tc/lib" "$tc/libexec" "$ctx/toolchain/" 2>/dev/null || cp -a "$tc/bin" "$tc/lib" "$tc/libexec" "$ctx/toolchain/"
    cp "$ROOT/docker/builder/Containerfile" "$ctx/"
  fi
  build_cached "$LOCAL_RUST_IMAGE" "$ctx" "$hash" --build-arg "BASE_IMAGE=$LOCAL_DEBIAN_IMAGE"
}

# --- 3. third-party stand-ins ------------------------------------------------------------
ui_binary() {
  [[ -x $UI_BIN ]] && return
  command -v go >/dev/null || die "go missing: needed to build ui-server v$UI_VERSION"
  log "go install github.com/temporalio/ui-server/v2/cmd/server@v$UI_VERSION"
  mkdir -p "$(dirname "$UI_BIN")"
  GOTOOLCHAIN=auto GOBIN="$(dirname "$UI_BIN")" CGO_ENABLED=0 \
    go install "github.com/temporalio/ui-server/v2/cmd/server@v$UI_VERSION" >"$WORK/logs/ui-server.log" 2>&1 \
    || { tail -20 "$WORK/logs/ui-server.log" >&2; die "building ui-server failed"; }
}

standins() {
  local d="$ROOT/docker/standins" ctx="$WORK/ctx" base_hash
  base_hash=$(image_hash "$LOCAL_DEBIAN_IMAGE")
  [[ -n $base_hash ]] || die "$LOCAL_DEBIAN_IMAGE missing; run $0 base"
  [[ -x $TEMPORAL_BIN_DIR/server && -x $TEMPORAL_BIN_DIR/sql ]] \
    || die "Temporal binaries missing in $TEMPORAL_BIN_DIR (run scripts/install.sh)"
  [[ -x $TEMPORAL_CLI ]] || die "Temporal CLI missing at $TEMPORAL_CLI (run scripts/install.sh)"
  local args=(--build-arg "BASE_IMAGE=$LOCAL_DEBIAN_IMAGE")

  rm -rf "$ctx/postgres"; mkdir -p "$ctx/postgres"; cp "$d/postgres/"* "$ctx/postgres/"
  build_cached "$POSTGRES_IMAGE" "$ctx/postgres" "$( { echo "$base_hash"; hash_inputs "$d/postgres"; } | sha256sum | cut -c1-16)" "${args[@]}"

  rm -rf "$ctx/server"; mkdir -p "$ctx/server"; cp "$d/temporal-server/Containerfile" "$ctx/server/"
  cp -l "$TEMPORAL_BIN_DIR/server" "$ctx/server/temporal-server" 2>/dev/null || cp "$TEMPORAL_BIN_DIR/server" "$ctx/server/temporal-server"
  build_cached "$TEMPORAL_SERVER_IMAGE" "$ctx/server" "$( { echo "$base_hash"; hash_inputs "$ctx/server"; } | sha256sum | cut -c1-16)" "${args[@]}"

  local schema
  schema=$(GOFLAGS=-mod=mod go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")/go.temporal.io/server@$TEMPORAL_SERVER_VERSION/schema
  rm -rf "$ctx/admin"; mkdir -p "$ctx/admin/schema"; cp "$d/temporal-admin-tools/Containerfile" "$ctx/admin/"
  cp "$TEMPORAL_BIN_DIR/sql" "$ctx/admin/temporal-sql-tool"; cp "$TEMPORAL_CLI" "$ctx/admin/temporal"
  if [[ -d $schema ]]; then cp -r "$schema/." "$ctx/admin/schema/"; chmod -R u+w "$ctx/admin/schema"; fi
  build_cached "$TEMPORAL_ADMIN_TOOLS_IMAGE" "$ctx/admin" "$( { echo "$base_hash"; hash_inputs "$ctx/admin"; } | sha256sum | cut -c1-16)" "${args[@]}"

  ui_binary
  local uimod
  uimod=$(GOFLAGS=-mod=mod go env GOMODCACHE)/github.com/temporalio/ui-server/v2@v$UI_VERSION
  [[ -f $uimod/config/docker.yaml ]] || die "ui-server module source missing at $uimod"
  rm -rf "$ctx/ui"; mkdir -p "$ctx/ui"; cp "$d/temporal-ui/"* "$ctx/ui/"
  cp "$UI_BIN" "$ctx/ui/ui-server"; cp "$uimod/config/docker.yaml" "$ctx/ui/docker.yaml"
  build_cached "$TEMPORAL_UI_IMAGE" "$ctx/ui" "$( { echo "$base_hash"; hash_inputs "$ctx/ui"; } | sha256sum | cut -c1-16)" "${args[@]}"
}

# --- 4. Bulwark images -------------------------------------------------------------------
bulwark() {
  local target t0 rev
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  # docker format: the OCI image format has no HEALTHCHECK, and buildah would drop it.
  local args=(--layers --format docker -f "$WORK/ctx/bulwark/docker/Dockerfile"
    --build-arg "RUST_IMAGE=$LOCAL_RUST_IMAGE" --build-arg "RUNTIME_IMAGE=$LOCAL_DEBIAN_IMAGE"
    --build-arg "VERSION=$BULWARK_VERSION" --build-arg "REVISION=$rev")
  if [[ -s $HOST_CA ]]; then
    args+=(-v "$HOST_CA:/run/bulwark-build-ca.crt:ro" --build-arg CARGO_HTTP_CAINFO=/run/bulwark-build-ca.crt)
  fi
  # One snapshot of the build context for all five targets, so a commit landing mid-build
  # cannot make the targets disagree (or rebuild the workspace once per target).
  local ctx="$WORK/ctx/bulwark"
  rm -rf "$ctx"; mkdir -p "$ctx/docker"
  cp -a "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" "$ROOT/.dockerignore" "$ROOT/crates" "$ROOT/services" "$ROOT/migrations" "$ctx/"
  cp -a "$ROOT/docker/Dockerfile" "$ROOT/docker/skeleton.sh" "$ROOT/docker/init" "$ctx/docker/"
  mkdir -p "$ctx/config"; cp -a "$ROOT/config/access.table" "$ctx/config/"
  find "$ctx" -name target -prune -exec rm -rf {} +
  for target in init control api worker gate; do
    log "building $BULWARK_IMAGE_REPO/$target:$BULWARK_VERSION (docker/Dockerfile --target $target)"
    t0=$SECONDS
    nice -n "${BULWARK_BUILD_NICE:-0}" podman build "${args[@]}" --target "$target" \
      -t "$BULWARK_IMAGE_REPO/$target:$BULWARK_VERSION" "$ctx" >"$WORK/logs/bulwark-$target.log" 2>&1 \
      || { tail -40 "$WORK/logs/bulwark-$target.log" >&2; die "building $target failed (log: $WORK/logs/bulwark-$target.log)"; }
    log "built    $BULWARK_IMAGE_REPO/$target:$BULWARK_VERSION in $((SECONDS - t0))s"
  done
}

case $what in
  base) base ;;
  standins) standins ;;
  bulwark) bulwark ;;
  all) base; standins; bulwark ;;
  *) die "usage: $0 [base|standins|bulwark|all]" ;;
esac
