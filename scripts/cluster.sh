#!/usr/bin/env bash
# A single-node Kubernetes on this machine, built from upstream sources (no kind, no registry):
# etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback; a real node made of
# Debian's containerd, runc and CNI plugins with kubelet and kube-proxy (iptables mode); CoreDNS
# and metrics-server as pods. State lives under .data/cluster/, the admin kubeconfig is
# .data/cluster/kubeconfig.
#
#   scripts/cluster.sh up          build what is missing (cached in .tools/), start what is not running
#   scripts/cluster.sh down        stop everything and remove every process, mount, address,
#                                  iptables rule, network device and cgroup it made
#   scripts/cluster.sh status      what runs
#   scripts/cluster.sh istiod      Istio's and the Gateway API's CRDs, istiod (pilot-discovery) as a
#                                  process on loopback, registered as the validating webhook for
#                                  Istio's resources (no injection: Envoy cannot be had here)
#   scripts/cluster.sh istiod-down stop istiod and remove its webhook registration
#   scripts/cluster.sh kwok        the kwok controller beside the real node, for fake nodes that
#                                  make e2e creates (annotated kwok.x-k8s.io/node=fake)
#   scripts/cluster.sh kwok-down   stop it and delete every fake node
#   scripts/cluster.sh settle      wait until no namespace is still terminating
#   scripts/cluster.sh volume NAME NAMESPACE CLAIM UID SIZE
#                                  a hostPath PersistentVolume pre-bound to one claim (tilt uses it);
#                                  its data is kept across runs unless FRESH_VOLUMES=1
#   KWOK_NODES=3 scripts/cluster.sh up
#                                  no real node: 3 kwok nodes in 3 zones instead (the real scheduler
#                                  places pods on them, no container runs), for scheduling checks
#                                  one node cannot show (spreading, PDBs during a drain, HPA scale-out)
#
# Network: the node's address 10.240.0.1/32 sits on lo; pods get 10.244.0.0/24 on the bridge cni0;
# Services 10.96.0.0/16, DNS 10.96.0.10 (cluster.local only, no upstream). A guard rule drops any
# forwarded pod packet that would leave through another interface than cni0: pod traffic stays in
# this machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.tools/bin"
STATE="$ROOT/.data/cluster"
# Sockets and runtime state of containerd (unix socket paths are limited to 108 bytes).
RUN=/run/meshwork-cluster
LOGS="$STATE/logs"
PKI="$STATE/pki"
KUBECONFIG_ADMIN="$STATE/kubeconfig"
export PATH="$BIN:$PATH"

KUBERNETES_VERSION=$(sed -n 's/^KUBERNETES_VERSION=//p' "$ROOT/scripts/install-tools.sh")
COREDNS_VERSION=$(sed -n 's/^COREDNS_VERSION=//p' "$ROOT/scripts/install-tools.sh")
METRICS_SERVER_VERSION=$(sed -n 's/^METRICS_SERVER_VERSION=//p' "$ROOT/scripts/install-tools.sh")
NODE_NAME=meshwork-node
NODE_IP=10.240.0.1
POD_CIDR=10.244.0.0/24
POD_SUPERNET=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
DNS_IP=10.96.0.10
BRIDGE=cni0
ETCD_PORT=23790
ETCD_PEER_PORT=23800
APISERVER_PORT=16443
# Pods reach the API server through the `kubernetes` Service, whose endpoint is this relay on the
# node address (the API server itself listens on loopback only).
APISERVER_RELAY_PORT=6443
CONTAINERD_SOCK="$RUN/containerd.sock"
GUARD_COMMENT=meshwork-cluster-guard
KWOK_NODES=${KWOK_NODES:-0}

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Writes stdin to $1 only when the content differs: kube-proxy (and others) restart or exit when
# their configuration file is rewritten, so a second `up` must leave identical files untouched.
write_if_changed() {
  local target=$1 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [[ -f "$target" ]] && cmp -s "$tmp" "$target"; then rm -f "$tmp"; return 0; fi
  mkdir -p "$(dirname "$target")"
  mv "$tmp" "$target"
}

kubectl_admin() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# ---------------------------------------------------------------------------------------------
# Prerequisites

require_root() { [[ $(id -u) -eq 0 ]] || die "the node needs root (network namespaces, mounts, iptables)"; }

install_packages() {
  local missing=() package
  for package in containerd runc containernetworking-plugins iptables conntrack socat buildah openssl gcc; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_binaries() {
  local wanted=(etcd kubernetes helm)
  if [[ $KWOK_NODES -gt 0 ]]; then wanted+=(kwok); else wanted+=(coredns metrics-server); fi
  "$ROOT/scripts/install-tools.sh" "${wanted[@]}"
}

# ---------------------------------------------------------------------------------------------
# Certificates: one CA for everything, plus a front-proxy CA for the aggregation layer.

cert() { # name cn org [server-sans] [ca]
  local name=$1 cn=$2 org=$3 sans=${4:-} ca=${5:-ca}
  [[ -f "$PKI/$name.crt" ]] && return 0
  local ext="$PKI/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $sans ]]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$sans"
    else echo "extendedKeyUsage=clientAuth"; fi
  } >"$ext"
  local subject="/CN=$cn"
  [[ -n $org ]] && subject="/O=$org$subject"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

make_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  local ca
  for ca in ca front-proxy-ca; do
    [[ -f "$PKI/$ca.crt" ]] && continue
    openssl req -x509 -new -newkey rsa:2048 -nodes -days 3650 -keyout "$PKI/$ca.key" \
      -subj "/CN=meshwork-$ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out "$PKI/$ca.crt" 2>/dev/null
  done
  if [[ ! -f "$PKI/sa.key" ]]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" "IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert admin meshwork-admin system:masters
  cert controller-manager system:kube-controller-manager ""
  cert scheduler system:kube-scheduler ""
  cert kubelet "system:node:$NODE_NAME" system:nodes
  cert kubelet-serving "system:node:$NODE_NAME" system:nodes "IP:$NODE_IP,DNS:$NODE_NAME"
  cert kube-proxy system:kube-proxy ""
  cert front-proxy-client front-proxy-client "" "" front-proxy-ca
  cert istiod istiod "" "IP:127.0.0.1,DNS:istiod.istio-system.svc"
  cert kwok kwok "" "IP:127.0.0.1,IP:$NODE_IP"
  cert istiod-client istiod system:masters
}

kubeconfig() { # file cert-name
  local file=$1 name=$2
  write_if_changed "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: meshwork
    cluster:
      server: https://127.0.0.1:$APISERVER_PORT
      certificate-authority: $PKI/ca.crt
users:
  - name: $name
    user:
      client-certificate: $PKI/$name.crt
      client-key: $PKI/$name.key
contexts:
  - name: meshwork
    context: { cluster: meshwork, user: $name }
current-context: meshwork
EOF
}

# ---------------------------------------------------------------------------------------------
# Processes: each daemon runs in its own session with a pid file; `down` stops exactly those.

pid_of() { local file="$STATE/pids/$1.pid"; [[ -f $file ]] && cat "$file"; }
running() { local pid; pid=$(pid_of "$1") && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; }

start() { # name command...
  local name=$1; shift
  running "$name" && return 0
  mkdir -p "$STATE/pids" "$LOGS"
  log "starting $name"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name.pid"
}

stop() { # name
  local name=$1 pid
  pid=$(pid_of "$name") || return 0
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/pids/$name.pid"
}

wait_for() { # description seconds command...
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -lt $deadline ]] || die "timed out after ${seconds}s waiting for $what (logs: $LOGS)"
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------------
# Control plane

start_control_plane() {
  start etcd etcd --name meshwork --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "meshwork=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" --log-level warn
  wait_for etcd 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

  start kube-apiserver kube-apiserver \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address "$NODE_IP" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --endpoint-reconciler-type none \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true \
    --client-ca-file "$PKI/ca.crt" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --profiling=false --v 1
  kubeconfig "$KUBECONFIG_ADMIN" admin
  kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager
  kubeconfig "$STATE/scheduler.kubeconfig" scheduler
  wait_for kube-apiserver 120 kubectl_admin get --raw /readyz

  start kube-controller-manager kube-controller-manager \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false \
    --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
    --use-service-account-credentials=true --profiling=false --v 1
  # The scheduler's built-in default spreading (soft, by zone and host, for every pod of a
  # ReplicaSet without constraints of its own) is off: what spreads the chart's pods is the chart's
  # own topologySpreadConstraints, which is what make e2e's scheduling step checks (a cluster's
  # defaults are its operator's choice, so the chart must not rely on them).
  write_if_changed "$STATE/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: { kubeconfig: $STATE/scheduler.kubeconfig }
leaderElection: { leaderElect: false }
profiles:
  - schedulerName: default-scheduler
    pluginConfig:
      - name: PodTopologySpread
        args: { defaultingType: List, defaultConstraints: [] }
EOF
  start kube-scheduler kube-scheduler --config "$STATE/scheduler.yaml" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --profiling=false --v 1
}

# ---------------------------------------------------------------------------------------------
# The real node

# The node address on lo, if it is there. (Not `ip addr | grep -q`: under pipefail, grep leaving
# early can fail the pipeline with SIGPIPE, and the address was then neither seen nor removed.)
node_address() { ip -o addr show dev lo to "$NODE_IP/32"; }

setup_network() {
  [[ -n $(node_address) ]] || ip addr add "$NODE_IP/32" dev lo
  # Forwarding is needed inside the machine (pod -> Service IP -> pod on the same bridge); remember
  # the previous value so `down` puts it back.
  [[ -f "$STATE/ip_forward.before" ]] || cat /proc/sys/net/ipv4/ip_forward >"$STATE/ip_forward.before"
  echo 1 >/proc/sys/net/ipv4/ip_forward
  [[ -w /proc/sys/net/bridge/bridge-nf-call-iptables ]] && echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
  # The guard: a forwarded packet from a pod may only leave through the pod bridge.
  iptables -C FORWARD -s "$POD_SUPERNET" ! -o "$BRIDGE" -m comment --comment "$GUARD_COMMENT" -j DROP 2>/dev/null ||
    iptables -I FORWARD 1 -s "$POD_SUPERNET" ! -o "$BRIDGE" -m comment --comment "$GUARD_COMMENT" -j DROP
  write_if_changed "$STATE/cni/net.d/10-meshwork.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "meshwork",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$STATE/cni/ipam"
      }
    }
  ]
}
EOF
}

start_containerd() {
  mkdir -p "$RUN" "$STATE/containerd"
  write_if_changed "$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$RUN/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/meshwork/pause:3.10"
  # Root in this VM lacks CAP_SYS_RESOURCE: without this every sandbox fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF
  start containerd containerd --config "$STATE/containerd/config.toml"
  wait_for containerd 30 ctr --address "$CONTAINERD_SOCK" version
}

start_node() {
  kubeconfig "$STATE/kubelet.kubeconfig" kubelet
  kubeconfig "$STATE/kube-proxy.kubeconfig" kube-proxy
  write_if_changed "$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization: { mode: Webhook }
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
# Pods resolve cluster.local only: no host search domains or upstream servers leak in.
resolvConf: ""
# Nothing is ever pulled: keep every imported image.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2% }
serializeImagePulls: false
maxPods: 60
EOF
  start kubelet kubelet --config "$STATE/kubelet/config.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet/root" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "topology.kubernetes.io/zone=local-a" --v 1
  write_if_changed "$STATE/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: { kubeconfig: $STATE/kube-proxy.kubeconfig }
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_SUPERNET
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [$NODE_IP/32]
# Leave the machine's conntrack sysctls alone.
conntrack: { maxPerCore: 0 }
EOF
  start kube-proxy kube-proxy --config "$STATE/kube-proxy/config.yaml"
  start apiserver-relay socat "TCP-LISTEN:$APISERVER_RELAY_PORT,bind=$NODE_IP,fork,reuseaddr" "TCP:127.0.0.1:$APISERVER_PORT"
  wait_for "node $NODE_NAME to register" 90 kubectl_admin get node "$NODE_NAME"
  kubectl_admin wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >/dev/null
}

# ---------------------------------------------------------------------------------------------
# kwok: fake nodes, managed by the kwok controller (a local process); the real scheduler places
# pods on them and kwok reports those pods Running and Ready (no container runs). Only nodes
# annotated kwok.x-k8s.io/node=fake are kwok's; the real node is left alone. kwok also serves
# each fake node's resource metrics (kubelet's /metrics/resource, with the CPU and memory usage a
# pod's kwok.x-k8s.io/usage-cpu / usage-memory annotations ask for), which metrics-server scrapes
# as it scrapes the real kubelet: the HPA controller sees fake pods' load like any other.
KWOK_PORT=10247

# kwok's configuration, from the pinned kwok module's own stage and metrics definitions: nodes
# become Ready and renew their leases, pods become Ready and go away when deleted.
kwok_config() {
  local kwok_version kwok_dir file
  kwok_version=$(sed -n 's/^KWOK_VERSION=//p' "$ROOT/scripts/install-tools.sh")
  kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@$kwok_version" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
  for file in stage/node/fast/node-initialize.yaml stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    stage/pod/fast/pod-ready.yaml stage/pod/fast/pod-complete.yaml stage/pod/fast/pod-delete.yaml \
    metrics/resource/metrics-resource.yaml metrics/usage/usage-from-annotation.yaml; do
    echo "---"
    cat "$kwok_dir/kustomize/$file"
  done | write_if_changed "$STATE/kwok/kwok.yaml"
}

# The kwok controller. Beside a real node it serves on the node address (pods, metrics-server
# among them, reach it there); without one (KWOK_NODES) on loopback.
kwok_controller() {
  require_root
  "$ROOT/scripts/install-tools.sh" kwok
  mkdir -p "$STATE/kwok"
  kwok_config
  local address=127.0.0.1
  [[ -n $(node_address) ]] && address=$NODE_IP
  start kwok kwok --kubeconfig "$KUBECONFIG_ADMIN" --config "$STATE/kwok/kwok.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr=10.250.0.0/16 --node-ip="$address" --node-port="$KWOK_PORT" --server-address="$address:$KWOK_PORT" \
    --node-lease-duration-seconds=40 \
    --tls-cert-file "$PKI/kwok.crt" --tls-private-key-file "$PKI/kwok.key"
  wait_for kwok 60 curl -sf --cacert "$PKI/ca.crt" "https://$address:$KWOK_PORT/healthz"
}

# Stops the kwok controller and deletes every fake node (kwok-managed pods go with them).
kwok_down() {
  if [[ -f $KUBECONFIG_ADMIN ]] && running kube-apiserver; then
    kubectl_admin delete node -l type=kwok --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  stop kwok
}

# KWOK_NODES mode: that many fake nodes, round-robin over three zones (no real node, so no taint:
# every pod lands on a fake one).
kwok_nodes() {
  local index zones=(a b c)
  for index in $(seq 0 $((KWOK_NODES - 1))); do
    kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$index
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/kwok-node-$index/metrics/resource
  labels:
    kubernetes.io/hostname: kwok-node-$index
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    topology.kubernetes.io/zone: local-${zones[$((index % 3))]}
status:
  allocatable: { cpu: "4", memory: 8Gi, pods: "110", ephemeral-storage: 50Gi }
  capacity: { cpu: "4", memory: 8Gi, pods: "110", ephemeral-storage: 50Gi }
EOF
  done
  kubectl_admin wait --for=condition=Ready node -l type=kwok --timeout=60s >/dev/null
}

# ---------------------------------------------------------------------------------------------
# Objects every cluster gets: RBAC for nodes, the `kubernetes` endpoint, storage, DNS, metrics.

apply_addons() {
  local real_node=$1
  kubectl_admin apply -f - >/dev/null <<EOF
# The API server listens on loopback; pods reach it through the relay on the node address.
apiVersion: v1
kind: Endpoints
metadata:
  name: kubernetes
  namespace: default
subsets:
  - addresses: [{ ip: $NODE_IP }]
    ports: [{ name: https, port: $APISERVER_RELAY_PORT, protocol: TCP }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes
  namespace: default
  labels: { kubernetes.io/service-name: kubernetes, endpointslice.kubernetes.io/managed-by: meshwork-cluster }
addressType: IPv4
endpoints:
  - addresses: [$NODE_IP]
    conditions: { ready: true }
ports:
  - { name: https, port: $APISERVER_RELAY_PORT, protocol: TCP }
---
# A single node's disk: PersistentVolumes are hostPath directories under .data/cluster/volumes,
# bound to claims of this default class when the pod is scheduled.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: { storageclass.kubernetes.io/is-default-class: "true" }
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF
  if [[ $real_node == yes ]]; then
    apply_dns
    apply_metrics_server
  fi
}

apply_dns() {
  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: { name: coredns, namespace: kube-system }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: "system:coredns" }
rules:
  - { apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch] }
  - { apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: "system:coredns" }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns" }
subjects: [{ kind: ServiceAccount, name: coredns, namespace: kube-system }]
---
# cluster.local only: there is no upstream, so every other name is refused.
apiVersion: v1
kind: ConfigMap
metadata: { name: coredns, namespace: kube-system }
data:
  Corefile: |
    cluster.local:1053 in-addr.arpa:1053 ip6.arpa:1053 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
        }
        cache 30
        loop
        reload
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: coredns, namespace: kube-system, labels: { k8s-app: kube-dns } }
spec:
  replicas: 1
  selector: { matchLabels: { k8s-app: kube-dns } }
  template:
    metadata: { labels: { k8s-app: kube-dns } }
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: RuntimeDefault } }
      containers:
        - name: coredns
          image: localhost/meshwork/coredns:$COREDNS_VERSION
          imagePullPolicy: Never
          args: [-conf, /etc/coredns/Corefile]
          ports:
            - { name: dns, containerPort: 1053, protocol: UDP }
            - { name: dns-tcp, containerPort: 1053, protocol: TCP }
          readinessProbe: { httpGet: { path: /ready, port: 8181 }, periodSeconds: 2 }
          livenessProbe: { httpGet: { path: /health, port: 8080 }, periodSeconds: 10 }
          resources: { requests: { cpu: 20m, memory: 32Mi }, limits: { memory: 128Mi } }
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: [ALL] } }
          volumeMounts: [{ name: config, mountPath: /etc/coredns, readOnly: true }]
      volumes: [{ name: config, configMap: { name: coredns } }]
---
apiVersion: v1
kind: Service
metadata: { name: kube-dns, namespace: kube-system, labels: { k8s-app: kube-dns } }
spec:
  clusterIP: $DNS_IP
  selector: { k8s-app: kube-dns }
  ports:
    - { name: dns, port: 53, targetPort: 1053, protocol: UDP }
    - { name: dns-tcp, port: 53, targetPort: 1053, protocol: TCP }
EOF
}

apply_metrics_server() {
  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: { name: metrics-server, namespace: kube-system }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: "system:aggregated-metrics-reader"
  labels: { rbac.authorization.k8s.io/aggregate-to-view: "true", rbac.authorization.k8s.io/aggregate-to-edit: "true", rbac.authorization.k8s.io/aggregate-to-admin: "true" }
rules:
  - { apiGroups: [metrics.k8s.io], resources: [pods, nodes], verbs: [get, list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: "system:metrics-server" }
rules:
  - { apiGroups: [""], resources: [nodes/metrics], verbs: [get] }
  - { apiGroups: [""], resources: [pods, nodes], verbs: [get, list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: "metrics-server-auth-reader", namespace: kube-system }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader }
subjects: [{ kind: ServiceAccount, name: metrics-server, namespace: kube-system }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: "metrics-server:system:auth-delegator" }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator" }
subjects: [{ kind: ServiceAccount, name: metrics-server, namespace: kube-system }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: "system:metrics-server" }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:metrics-server" }
subjects: [{ kind: ServiceAccount, name: metrics-server, namespace: kube-system }]
---
apiVersion: v1
kind: Service
metadata: { name: metrics-server, namespace: kube-system, labels: { k8s-app: metrics-server } }
spec:
  selector: { k8s-app: metrics-server }
  ports: [{ name: https, port: 443, targetPort: https, protocol: TCP }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: metrics-server, namespace: kube-system, labels: { k8s-app: metrics-server } }
spec:
  replicas: 1
  selector: { matchLabels: { k8s-app: metrics-server } }
  template:
    metadata: { labels: { k8s-app: metrics-server } }
    spec:
      serviceAccountName: metrics-server
      priorityClassName: system-cluster-critical
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: RuntimeDefault } }
      containers:
        - name: metrics-server
          image: localhost/meshwork/metrics-server:$METRICS_SERVER_VERSION
          imagePullPolicy: Never
          args:
            - --cert-dir=/tmp
            - --secure-port=10250
            - --kubelet-preferred-address-types=InternalIP
            # kwok's fake nodes name their own port (the kwok controller's) in their status.
            - --kubelet-use-node-status-port
            # The kubelet's serving certificate is signed by this cluster's CA, which the pod
            # does not carry; the node is this machine.
            - --kubelet-insecure-tls
            - --metric-resolution=15s
          ports: [{ name: https, containerPort: 10250, protocol: TCP }]
          readinessProbe: { httpGet: { path: /readyz, port: https, scheme: HTTPS }, periodSeconds: 5 }
          livenessProbe: { httpGet: { path: /livez, port: https, scheme: HTTPS }, periodSeconds: 10 }
          resources: { requests: { cpu: 20m, memory: 48Mi }, limits: { memory: 192Mi } }
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: [ALL] } }
          volumeMounts: [{ name: tmp, mountPath: /tmp }]
      volumes: [{ name: tmp, emptyDir: {} }]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: { name: v1beta1.metrics.k8s.io, labels: { k8s-app: metrics-server } }
spec:
  service: { name: metrics-server, namespace: kube-system }
  group: metrics.k8s.io
  version: v1beta1
  # metrics-server serves a self-signed certificate it made at start.
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
}

# A hostPath PersistentVolume under .data/cluster/volumes/<name>, pre-bound to one claim (the
# StatefulSets' volumeClaimTemplates). Kept across runs; a Released one is bound again.
# FRESH_VOLUMES=1 (make tilt-ci) empties one that no claim holds: PostgreSQL creates its users and
# databases only on an empty data directory, so data kept from before a service was added lacks it.
volume() { # name namespace claim owner-uid size
  local name=$1 namespace=$2 claim=$3 owner=$4 size=$5 dir="$STATE/volumes/$1" phase
  phase=$(kubectl_admin get pv "$name" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  [[ ${FRESH_VOLUMES:-} == 1 && $phase != Bound ]] && rm -rf "$dir"
  mkdir -p "$dir"
  chown "$owner:$owner" "$dir"
  [[ $phase == Released ]] && kubectl_admin delete pv "$name" --wait >/dev/null
  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata: { name: $name, labels: { app.kubernetes.io/part-of: meshwork } }
spec:
  capacity: { storage: $size }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  hostPath: { path: $dir, type: Directory }
  claimRef: { namespace: $namespace, name: $claim }
EOF
}

# ---------------------------------------------------------------------------------------------
# istiod as a local process. Its webhook server (127.0.0.1:15017) serves a certificate from this
# cluster's CA, so the API server can call it; the mesh config is the one in
# k8s/istio/istio-operator.yaml (also published as the `istio` ConfigMap, which istioctl reads).

ISTIOD_WEBHOOK_PORT=15017

istiod() {
  require_root
  "$ROOT/scripts/install-tools.sh" pilot-discovery
  local istio_version gateway_version istio_dir gateway_dir
  istio_version=$(sed -n 's/^ISTIO_VERSION=//p' "$ROOT/scripts/install-tools.sh")
  gateway_version=$(sed -n 's/^GATEWAY_API_VERSION=//p' "$ROOT/scripts/install-tools.sh")
  istio_dir=$(go mod download -json "istio.io/istio@$istio_version" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
  gateway_dir=$(go mod download -json "sigs.k8s.io/gateway-api@$gateway_version" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
  kubectl_admin apply --server-side --force-conflicts -f "$istio_dir/manifests/charts/base/files/crd-all.gen.yaml" >/dev/null
  kubectl_admin apply --server-side --force-conflicts -f "$gateway_dir/config/crd/standard/" >/dev/null
  kubectl_admin wait --for=condition=Established crd --all --timeout=60s >/dev/null
  mkdir -p "$STATE/istiod"
  python3 -c 'import sys, yaml; print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["spec"]["meshConfig"], sort_keys=True), end="")' \
    "$ROOT/k8s/istio/istio-operator.yaml" | write_if_changed "$STATE/istiod/mesh.yaml"
  kubectl_admin create namespace istio-system --dry-run=client -o yaml | kubectl_admin apply -f - >/dev/null
  kubectl_admin -n istio-system create configmap istio --from-file=mesh="$STATE/istiod/mesh.yaml" --dry-run=client -o yaml |
    kubectl_admin apply -f - >/dev/null
  # The injection templates, rendered from the same istio module's istiod chart as a real install
  # would: istiod's gateway controller deploys a Gateway's Service and Deployment from the
  # "kube-gateway" template, and reads this ConfigMap only at start. CNI on, as in
  # k8s/istio/istio-operator.yaml (no istio-init container). Nothing is ever pulled here: the
  # gateway pods istiod deploys use imagePullPolicy Never, so their proxy container (Envoy, which
  # cannot be had here) stays in ErrImageNeverPull instead of asking a registry.
  helm template istiod "$istio_dir/manifests/charts/istio-control/istio-discovery" -n istio-system \
    --kube-version "$KUBERNETES_VERSION" --set pilot.cni.enabled=true --set global.imagePullPolicy=Never \
    --show-only templates/istiod-injector-configmap.yaml | kubectl_admin apply --server-side --force-conflicts -f - >/dev/null
  kubeconfig "$STATE/istiod.kubeconfig" istiod-client
  ( cd "$STATE/istiod"
    export POD_NAMESPACE=istio-system POD_NAME=istiod-local REVISION=default PILOT_ENABLE_GATEWAY_API=true
    start istiod pilot-discovery discovery --kubeconfig "$STATE/istiod.kubeconfig" \
      --meshConfig "$STATE/istiod/mesh.yaml" --domain cluster.local \
      --httpAddr 127.0.0.1:15080 --grpcAddr 127.0.0.1:15010 --secureGRPCAddr 127.0.0.1:15012 \
      --monitoringAddr 127.0.0.1:15014 --httpsAddr "127.0.0.1:$ISTIOD_WEBHOOK_PORT" \
      --tlsCertFile "$PKI/istiod.crt" --tlsKeyFile "$PKI/istiod.key" --caCertFile "$PKI/ca.crt" \
      --profile=false --log_output_level default:warn )
  wait_for istiod 180 curl -sf http://127.0.0.1:15080/ready
  # The webhook port answers TLS with a certificate this cluster's CA signed (any HTTP status).
  wait_for "istiod's webhook server" 60 curl -s -o /dev/null --cacert "$PKI/ca.crt" "https://127.0.0.1:$ISTIOD_WEBHOOK_PORT/validate"
  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: meshwork-istiod-validator
webhooks:
  - name: validation.istio.io
    clientConfig:
      url: https://127.0.0.1:$ISTIOD_WEBHOOK_PORT/validate
      caBundle: $(base64 -w0 <"$PKI/ca.crt")
    rules:
      - operations: [CREATE, UPDATE]
        apiGroups: [security.istio.io, networking.istio.io, telemetry.istio.io, extensions.istio.io]
        apiVersions: ["*"]
        resources: ["*"]
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: [v1]
EOF
  log "istiod running; validating webhook meshwork-istiod-validator -> 127.0.0.1:$ISTIOD_WEBHOOK_PORT"
}

# Stops istiod and unregisters its webhook (which would refuse every Istio resource once istiod
# is gone: failurePolicy Fail).
istiod_down() {
  if [[ -f $KUBECONFIG_ADMIN ]] && running kube-apiserver; then
    kubectl_admin delete validatingwebhookconfiguration meshwork-istiod-validator --ignore-not-found >/dev/null 2>&1 || true
  fi
  stop istiod
}

# ---------------------------------------------------------------------------------------------

up() {
  local started=$SECONDS
  require_root
  install_packages
  install_binaries
  mkdir -p "$STATE" "$LOGS"
  make_pki
  start_control_plane
  if [[ $KWOK_NODES -gt 0 ]]; then
    apply_addons no
    kwok_controller
    kwok_nodes
  else
    setup_network
    start_containerd
    "$ROOT/scripts/cluster-images.sh" system
    start_node
    apply_addons yes
    kubectl_admin -n kube-system rollout status deploy/coredns --timeout=120s >/dev/null
  fi
  log "up in $((SECONDS - started)) s; export KUBECONFIG=$KUBECONFIG_ADMIN"
}

# Every container of our containerd, stopped through runc so that their mounts and cgroups go too.
remove_containers() {
  [[ -S $CONTAINERD_SOCK ]] || return 0
  local id
  for id in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  sleep 0.5
  for id in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
  done
}

down() {
  require_root
  local name
  istiod_down
  kwok_down
  stop kubelet
  remove_containers
  for name in apiserver-relay kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$name"; done
  stop containerd
  # Shims outlive containerd; each belongs to our socket.
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  # Leftover container processes (a shim killed before its task): runc knows them by its root.
  if [[ -d $RUN/containerd/runc/k8s.io ]]; then
    local id
    for id in $(runc --root "$RUN/containerd/runc/k8s.io" list -q 2>/dev/null); do
      runc --root "$RUN/containerd/runc/k8s.io" delete --force "$id" >/dev/null 2>&1 || true
    done
  fi
  # Mounts under our state and runtime directories, deepest first.
  local mount
  while read -r mount; do umount -l "$mount" 2>/dev/null || true; done < <(
    awk -v state="$STATE" -v run="$RUN" 'index($2, state) == 1 || index($2, run) == 1 { print $2 }' /proc/self/mounts | sort -r)
  # Network namespaces the CNI plugins left (named cni-*).
  local netns
  for netns in $(ip netns list 2>/dev/null | awk '/^cni-/ { print $1 }'); do ip netns delete "$netns" 2>/dev/null || true; done
  # iptables: kube-proxy's chains (it removes them itself), then the guard.
  if [[ -x $BIN/kube-proxy ]]; then kube-proxy --cleanup >/dev/null 2>&1 || true; fi
  # kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT): kube-proxy leaves them.
  local table chain rule
  for table in filter nat mangle; do
    for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      iptables -t "$table" -S "$chain" >/dev/null 2>&1 || continue
      while read -r rule; do
        eval "iptables -t $table ${rule/-A /-D }" 2>/dev/null || true
      done < <(iptables -t "$table" -S | grep -- "-j $chain\$")
      iptables -t "$table" -F "$chain" 2>/dev/null || true
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  while iptables -C FORWARD -s "$POD_SUPERNET" ! -o "$BRIDGE" -m comment --comment "$GUARD_COMMENT" -j DROP 2>/dev/null; do
    iptables -D FORWARD -s "$POD_SUPERNET" ! -o "$BRIDGE" -m comment --comment "$GUARD_COMMENT" -j DROP
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
  [[ -z $(node_address) ]] || ip addr del "$NODE_IP/32" dev lo
  if [[ -f $STATE/ip_forward.before ]]; then cat "$STATE/ip_forward.before" >/proc/sys/net/ipv4/ip_forward; rm -f "$STATE/ip_forward.before"; fi
  # The pods' cgroups (cgroupfs driver: /kubepods in every hierarchy), deepest first.
  local dir
  for dir in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $dir ]] || continue
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  # Pod IPs handed out by host-local: the pods are gone.
  rm -rf "$STATE/cni/ipam" "$RUN"
  log "down"
}

status() {
  local name
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy apiserver-relay kwok istiod; do
    if running "$name"; then echo "$name running (pid $(pid_of "$name"))"; fi
  done
  [[ -f $KUBECONFIG_ADMIN ]] && kubectl_admin get nodes 2>/dev/null || true
}

# Waits until no namespace is still terminating (an earlier run's `tilt down --delete-namespaces`
# or uninstall that the cluster went down in the middle of): nothing can be created in one.
settle() {
  local deadline=$((SECONDS + 180))
  while [[ $(kubectl_admin get namespaces -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}') == *Terminating* ]]; do
    [[ $SECONDS -lt $deadline ]] || die "namespaces still terminating after 180 s: $(kubectl_admin get namespaces | grep Terminating)"
    sleep 1
  done
}

[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0
case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  istiod) istiod ;;
  istiod-down) istiod_down ;;
  kwok) kwok_controller ;;
  kwok-down) kwok_down ;;
  settle) settle ;;
  volume) shift; volume "$@" ;;
  *) echo "usage: $0 up|down|status|istiod|istiod-down|kwok|kwok-down|settle|volume" >&2; exit 2 ;;
esac
