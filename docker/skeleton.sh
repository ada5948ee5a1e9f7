#!/bin/sh
# skeleton.sh SRC DEST: copy the workspace's manifests and lockfile from SRC to DEST and stub
# every target file (lib.rs, main.rs, src/bin/*, benches/*, build.rs) with an empty body, so
# that a build of DEST compiles exactly the dependency tree of SRC and nothing of ours.
# Every mtime is pinned so the result is byte-identical whenever the manifests are, which
# keeps the dependency layer cached across source-only changes.
set -eu
src=$1 dest=$2
cd "$src"
find . \( -path ./target -o -path ./.git -o -path ./.bulwark \) -prune -o -name Cargo.toml -print \
  | while read -r manifest; do
      dir=$(dirname "$manifest")
      mkdir -p "$dest/$dir"
      cp "$manifest" "$dest/$manifest"
      for f in "$dir"/src/lib.rs "$dir"/src/main.rs "$dir"/src/bin/*.rs "$dir"/benches/*.rs "$dir"/build.rs; do
        [ -f "$f" ] || continue
        mkdir -p "$dest/$(dirname "$f")"
        case $f in
          */lib.rs) : >"$dest/$f" ;;
          *) echo 'fn main() {}' >"$dest/$f" ;;
        esac
      done
    done
cp Cargo.lock "$dest/Cargo.lock"
[ -f rust-toolchain.toml ] && cp rust-toolchain.toml "$dest/"
find "$dest" -exec touch -h -d @0 {} +
