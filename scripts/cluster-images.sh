#!/usr/bin/env bash
# Builds the images the local cluster runs and imports them into its containerd (namespace
# k8s.io). Nothing is ever pulled: every image is made here from a pinned binary.
#
#   scripts/cluster-images.sh system      pause, CoreDNS, metrics-server, nats-server, PostgreSQL
#   scripts/cluster-images.sh build-system   the same, built but not imported
#   scripts/cluster-images.sh services    the six service images of `make images` (TAG, default dev)
#   scripts/cluster-images.sh tilt SERVICE REF
#                                         build one service image as REF (tilt's $EXPECTED_REF) and import it
#   scripts/cluster-images.sh tag NAME NEW-NAME   a second name for an image already in containerd
#   scripts/cluster-images.sh import IMAGE [NAME]
#                                         one buildah image, under NAME in containerd (tilt uses it)
#
# An image is imported again only when its buildah image id changed (stamps under
# .data/cluster/containerd/imported/).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.tools/bin"
STATE="$ROOT/.data/cluster"
CONTAINERD_SOCK=/run/meshwork-cluster/containerd.sock
STAMPS="$STATE/containerd/imported"
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
TAG="${TAG:-dev}"
NATS_VERSION=$(sed -n 's/^NATS_VERSION=v//p' "$ROOT/scripts/install-tools.sh")
COREDNS_VERSION=$(sed -n 's/^COREDNS_VERSION=//p' "$ROOT/scripts/install-tools.sh")
METRICS_SERVER_VERSION=$(sed -n 's/^METRICS_SERVER_VERSION=//p' "$ROOT/scripts/install-tools.sh")
KUBERNETES_VERSION=$(sed -n 's/^KUBERNETES_VERSION=//p' "$ROOT/scripts/install-tools.sh")
PAUSE_VERSION=3.10
POSTGRES_MAJOR=15

log() { printf '[cluster-images] %s\n' "$*" >&2; }

# The recipe (this script and the inputs) is stamped on the image, so an unchanged recipe is not
# rebuilt and a changed one is.
current_image() { # image recipe
  [[ "$(buildah inspect --type image --format '{{index .ImageAnnotations "meshwork.dev/recipe"}}' "$1" 2>/dev/null)" == "$2" ]]
}

# A scratch image holding one static binary (plus /etc/passwd for its non-root user).
scratch_image() { # image binary entrypoint-path user
  local image=$1 binary=$2 path=$3 user=$4 recipe rootfs ctr
  recipe=$( { sha256sum "$0"; sha256sum "$binary"; } | sha256sum | cut -c1-12)
  current_image "$image" "$recipe" && return 0
  log "building $image"
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/etc" "$rootfs/tmp" "$(dirname "$rootfs$path")"
  chmod 1777 "$rootfs/tmp"
  cp "$binary" "$rootfs$path"
  printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/:/sbin/nologin\n' "${user%:*}" "${user#*:}" >"$rootfs/etc/passwd"
  ctr=$(buildah from scratch)
  buildah copy --quiet "$ctr" "$rootfs" / >/dev/null
  buildah config --entrypoint "[\"$path\"]" --cmd "" --user "$user" --annotation "meshwork.dev/recipe=$recipe" "$ctr"
  buildah commit --quiet --rm "$ctr" "$image" >/dev/null
  rm -rf "$rootfs"
}

# Kubernetes' own pause.c (from the k8s.io/kubernetes module), compiled static.
pause_image() {
  local image="localhost/meshwork/pause:$PAUSE_VERSION" source work
  source="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')/build/pause/linux/pause.c"
  work="$ROOT/.tools/build/pause"
  mkdir -p "$work"
  if [[ ! -x $work/pause-$PAUSE_VERSION ]]; then
    gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-meshwork" -o "$work/pause-$PAUSE_VERSION" "$source"
  fi
  scratch_image "$image" "$work/pause-$PAUSE_VERSION" /pause 65535:65535
}

# PostgreSQL for dev clusters, from this machine's Debian PostgreSQL: its binaries and shared
# files, the libraries they link, dash as /bin/sh and tr for k8s/postgres/'s init script, and an
# entrypoint that follows the official image's convention (initdb on an empty PGDATA with
# POSTGRES_USER/POSTGRES_PASSWORD, then every /docker-entrypoint-initdb.d/*.sh once).
postgres_image() {
  local image="localhost/meshwork/postgres:$POSTGRES_MAJOR" pgbin="/usr/lib/postgresql/$POSTGRES_MAJOR/bin"
  [[ -x $pgbin/postgres ]] || { log "installing postgresql-$POSTGRES_MAJOR (apt-get)"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$POSTGRES_MAJOR" >/dev/null; }
  local recipe rootfs ctr lib
  recipe=$( { sha256sum "$0"; sha256sum "$pgbin/postgres"; } | sha256sum | cut -c1-12)
  current_image "$image" "$recipe" && return 0
  log "building $image"
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs"/{etc,tmp,bin,usr/bin,var/run/postgresql,var/lib/postgresql/data,docker-entrypoint-initdb.d}
  chmod 1777 "$rootfs/tmp"
  mkdir -p "$rootfs/usr/lib/postgresql" "$rootfs/usr/share/postgresql"
  cp -a "/usr/lib/postgresql/$POSTGRES_MAJOR" "$rootfs/usr/lib/postgresql/"
  cp -a "/usr/share/postgresql/$POSTGRES_MAJOR" "$rootfs/usr/share/postgresql/"
  mkdir -p "$rootfs/usr/share/zoneinfo"
  cp -a /usr/share/zoneinfo/UTC /usr/share/zoneinfo/Etc "$rootfs/usr/share/zoneinfo/"
  cp /bin/dash "$rootfs/bin/sh"
  cp /usr/bin/tr "$rootfs/usr/bin/tr"
  for lib in $(ldd "$pgbin"/* "/usr/lib/postgresql/$POSTGRES_MAJOR"/lib/*.so /bin/dash /usr/bin/tr 2>/dev/null |
      awk '/=> \// {print $3} /^[ \t]*\/lib/ {print $1}' | sort -u); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\npostgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\npostgres:x:999:\n' >"$rootfs/etc/group"
  chown 999:999 "$rootfs/var/run/postgresql" "$rootfs/var/lib/postgresql" "$rootfs/var/lib/postgresql/data"
  cat >"$rootfs/usr/local-entrypoint.sh" <<'EOF'
#!/bin/sh
# The official postgres image's startup convention, for dev clusters.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}" "${POSTGRES_USER:=postgres}"
export PGDATA POSTGRES_USER
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/pwfile
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile --no-locale --encoding=UTF8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  : >/tmp/pwfile
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  # Initialise on a private socket, so readiness probes (pg_isready on the usual socket) fail
  # until the databases exist and the real server listens.
  PGHOST=/tmp
  export PGHOST
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start >/dev/null
  for script in /docker-entrypoint-initdb.d/*.sh; do
    [ -e "$script" ] || continue
    echo "running $script"
    "$script"
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  unset PGHOST
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
EOF
  chmod 755 "$rootfs/usr/local-entrypoint.sh"
  ctr=$(buildah from scratch)
  buildah copy --quiet "$ctr" "$rootfs" / >/dev/null
  buildah config --entrypoint '["/usr/local-entrypoint.sh"]' --cmd "" --user 999:999 \
    --env "PATH=$pgbin:/usr/bin:/bin" --env PGDATA=/var/lib/postgresql/data --env TZ=UTC \
    --annotation "meshwork.dev/recipe=$recipe" "$ctr"
  buildah commit --quiet --rm "$ctr" "$image" >/dev/null
  rm -rf "$rootfs"
}

# Imports a buildah image into the node's containerd under `name` (what pods' image fields say,
# e.g. docker.io/meshwork/identity:dev for meshwork/identity:dev).
import() { # buildah-image containerd-name
  local image=$1 name=${2:-$1} id stamp archive
  id=$(buildah inspect --type image --format '{{.FromImageID}}' "$image")
  stamp="$STAMPS/$(echo "$name" | tr '/:' '__')"
  # The stamp alone is not enough: the kubelet's image garbage collection (under disk pressure)
  # can remove an imported image, and with no registry reachable nothing pulls it back.
  if [[ -f $stamp && "$(cat "$stamp")" == "$id" ]] &&
    ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q | grep -qxF "$name"; then
    return 0
  fi
  log "importing $name"
  archive=$(mktemp --suffix .tar)
  rm -f "$archive"
  buildah push --quiet "$image" "docker-archive:$archive:$name" >/dev/null
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$archive" >/dev/null
  rm -f "$archive"
  mkdir -p "$STAMPS"
  echo "$id" >"$stamp"
}

build_system_images() {
  "$ROOT/scripts/install-tools.sh" nats-static coredns metrics-server
  pause_image
  scratch_image "localhost/meshwork/coredns:$COREDNS_VERSION" "$BIN/coredns" /coredns 65532:65532
  scratch_image "localhost/meshwork/metrics-server:$METRICS_SERVER_VERSION" "$BIN/metrics-server" /metrics-server 65532:65532
  scratch_image "localhost/meshwork/nats-server:$NATS_VERSION" "$BIN/nats-server-static" /nats-server 1000:1000
  postgres_image
}

system_images() {
  build_system_images
  import "localhost/meshwork/pause:$PAUSE_VERSION"
  import "localhost/meshwork/coredns:$COREDNS_VERSION"
  import "localhost/meshwork/metrics-server:$METRICS_SERVER_VERSION"
  import "localhost/meshwork/nats-server:$NATS_VERSION"
  import "localhost/meshwork/postgres:$POSTGRES_MAJOR"
}

service_images() {
  local service
  for main in "$ROOT"/services/*/src/main.ts; do
    service=$(basename "$(dirname "$(dirname "$main")")")
    import "localhost/meshwork/$service:$TAG" "docker.io/meshwork/$service:$TAG"
  done
}

# tilt's custom_build: build (without build-images.sh's proving runs: tilt deploys it next and
# the pod's probes prove it) and import under the reference tilt put in the manifests.
tilt_image() { # service ref
  local service=$1 ref=$2
  TAG=${ref##*:} BUILD_ONLY=1 "$ROOT/scripts/build-images.sh" "$service" >&2
  import "localhost/${ref%:*}:${ref##*:}" "docker.io/$ref"
}

case "${1:-}" in
  system) system_images ;;
  build-system) build_system_images ;;
  pause|postgres) "${1}_image" ;;
  coredns) scratch_image "localhost/meshwork/coredns:$COREDNS_VERSION" "$BIN/coredns" /coredns 65532:65532; import "localhost/meshwork/coredns:$COREDNS_VERSION" ;;
  nats) scratch_image "localhost/meshwork/nats-server:$NATS_VERSION" "$BIN/nats-server-static" /nats-server 1000:1000 ;;
  services) service_images ;;
  import) shift; import "$@" ;;
  tilt) shift; tilt_image "$@" ;;
  # A second name for an imported image (make e2e's "new image tag"), without another import.
  tag) ctr --address "$CONTAINERD_SOCK" -n k8s.io images tag --force "$2" "$3" >/dev/null ;;
  *) echo "usage: $0 system|services|import IMAGE [NAME]" >&2; exit 2 ;;
esac
