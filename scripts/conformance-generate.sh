#!/usr/bin/env bash
# Regenerates test/conformance/gen from the conformance suite's own protos, taken from the Go
# module of the pinned connectconformance (its version lives in scripts/install-tools.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
version=$(sed -n 's/^CONFORMANCE_VERSION=//p' scripts/install-tools.sh)
dir=$(go mod download -json "connectrpc.com/conformance@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
protos="$dir/proto/connectrpc/conformance/v1"
buf generate "$dir/proto" --template test/conformance/buf.gen.yaml \
  --path "$protos/service.proto" --path "$protos/config.proto" --path "$protos/server_compat.proto"
