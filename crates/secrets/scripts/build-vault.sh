#!/usr/bin/env bash
# Builds a HashiCorp Vault server binary from its Go module, for the real-Vault tests of
# bulwark-secrets (BULWARK_VAULT_BIN). Only the Go module proxy is needed.
#
#   crates/secrets/scripts/build-vault.sh [OUT]   (default OUT: ~/.cache/bulwark/vault-v1.21.0)
#
# Prints the binary's path. Reuses an existing binary. Takes roughly 10-20 minutes of CPU
# on 2 cores the first time.
#
# Why not `go install github.com/hashicorp/vault@…`: Vault's go.mod replaces its `api` and
# `sdk` modules with local directories, which `go install pkg@version` refuses, and the
# module zip does not contain those nested modules. So this script copies the module
# source, drops the replace directives of its api and sdk modules, pins the published sdk v0.21.0 (the one cut
# with Vault 1.21.0), and adapts the two call sites whose signature differs in that sdk
# (identity store ActivationFunc gained a string argument). Test use only.
set -euo pipefail

VERSION=v1.21.0
SDK=v0.21.0
OUT=${1:-${HOME}/.cache/bulwark/vault-${VERSION}}

if [[ -x "$OUT" ]] && "$OUT" version >/dev/null 2>&1; then
  echo "$OUT"
  exit 0
fi

export GOTOOLCHAIN=auto GOFLAGS=-mod=mod GONOSUMDB='github.com/hashicorp/vault/*'
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

dir=$(go mod download -json "github.com/hashicorp/vault@${VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[[ -d "$dir" ]] || { echo "could not download vault ${VERSION}" >&2; exit 1; }
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
sed -i -E '/^replace github.com\/hashicorp\/vault\/(api|sdk)/d' go.mod
go mod edit -require="github.com/hashicorp/vault/sdk@${SDK}"
sed -i 's/ActivationFunc: iStore.activateDeduplication,/ActivationFunc: func(ctx context.Context, req *logical.Request, _ string) error { return iStore.activateDeduplication(ctx, req) },/' vault/identity_store.go
sed -i 's/b.idStoreBackend.ActivationFunc(ctx, nil)/b.idStoreBackend.ActivationFunc(ctx, nil, "")/' vault/logical_system_activation_flags.go
mkdir -p "$(dirname "$OUT")"
go build -o "$OUT.tmp" . >&2
mv "$OUT.tmp" "$OUT"
"$OUT" version >&2
echo "$OUT"
