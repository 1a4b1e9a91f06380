#!/usr/bin/env python3
"""Prepare offline JSON schemas for kubeconform.

Usage: build-schemas.py <istio crd-all.gen.yaml> <outdir> [more CRD yaml files...]

Writes two trees that kubeconform reads with -schema-location templates:
  <outdir>/kubernetes/{{ .ResourceKind }}{{ .KindSuffix }}.json
      Kubernetes built-in kinds, strict (unknown fields rejected), copied from the schemas the
      kubernetes-validate package ships (no network needed).
  <outdir>/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json
      every served version of every CRD given (Istio's, and Gateway API's), converted from the
      CRD's openAPIV3Schema the way kubeconform's openapi2jsonschema does, strict as well.
"""
import json
import os
import re
import sys
from pathlib import Path

import yaml

# The Kubernetes minor release the chart targets. kubernetes-validate ships one directory per
# release; pin one so a pip upgrade cannot silently change what "valid" means.
KUBERNETES_VERSION = os.environ.get("KUBERNETES_SCHEMA_VERSION", "1.35.0")


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    crd_files = [Path(sys.argv[1]), *map(Path, sys.argv[3:])]
    out = Path(sys.argv[2])
    k8s = write_kubernetes_schemas(out / "kubernetes")
    crds = write_crd_schemas(crd_files, out / "crds")
    print(f"[schemas] {k8s} Kubernetes schemas (v{KUBERNETES_VERSION}), {crds} CRD version schemas -> {out}",
          file=sys.stderr)
    return 0


def write_kubernetes_schemas(out: Path) -> int:
    import kubernetes_validate  # shipped by the pip package; found through PYTHONPATH

    source = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local-strict"
    if not source.is_dir():
        raise SystemExit(f"kubernetes-validate has no schemas for {KUBERNETES_VERSION} at {source}")
    definitions = json.loads(retarget((source / "_definitions.json").read_text()))["$defs"]
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for schema_file in source.glob("*.json"):
        schema = json.loads(retarget(schema_file.read_text()))
        if "kind" not in schema.get("properties", {}):
            continue  # a fragment (PodSpec, ObjectMeta...), not a kind a manifest can hold
        # kubeconform resolves no references across files, so each kind carries the definitions
        # it reaches.
        schema["$defs"] = {name: definitions[name] for name in sorted(reachable(schema, definitions))}
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        (out / schema_file.name).write_text(json.dumps(schema, separators=(",", ":")))
        count += 1
    return count


def retarget(text: str) -> str:
    """The shipped schemas point at an absolute "/api/_definitions.json"; make references local."""
    return text.replace('"/api/_definitions.json#/$defs/', '"#/$defs/')


def reachable(schema: dict, definitions: dict) -> set[str]:
    seen: set[str] = set()
    pending = [schema]
    while pending:
        for ref in re.findall(r'"#/\$defs/([^"]+)"', json.dumps(pending.pop())):
            if ref not in seen:
                seen.add(ref)
                pending.append(definitions[ref])
    return seen


def write_crd_schemas(files: list[Path], out: Path) -> int:
    count = 0
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            for version in spec.get("versions", []):
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if not schema or not version.get("served", True):
                    continue
                target = out / group / f"{kind.lower()}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(to_json_schema(schema, group, version["name"], kind), indent=1))
                count += 1
    return count


def to_json_schema(schema: dict, group: str, version: str, kind: str) -> dict:
    result = strict(convert(schema))
    props = result.setdefault("properties", {})
    # apiVersion and kind are pinned so a document of another kind never validates by accident.
    props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version}"]}
    props["kind"] = {"type": "string", "enum": [kind]}
    props["metadata"] = {"type": "object"}
    result["$schema"] = "http://json-schema.org/draft-07/schema#"
    return result


def convert(node):
    """OpenAPI v3 (Kubernetes dialect) -> plain JSON schema."""
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: convert(value) for key, value in node.items()}
    if node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    # CEL rules are checked by the API server, not by a JSON schema validator.
    node.pop("x-kubernetes-validations", None)
    return node


def strict(node):
    """Reject unknown fields wherever the CRD lists its fields (as kubeconform -strict expects)."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: strict(value) for key, value in node.items()}
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        node["additionalProperties"] = False
    return node


if __name__ == "__main__":
    sys.exit(main())
