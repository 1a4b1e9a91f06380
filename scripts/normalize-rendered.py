#!/usr/bin/env python3
"""Blank the values of Secrets the chart generates at install time (signing key, admin password).

`helm template` has no cluster to `lookup`, so those values are new random bytes on every render;
blanking them keeps the checked-in examples diffable. Usage: normalize-rendered.py <dir>...
"""
import re
import sys
from pathlib import Path

GENERATED = 'meshwork.dev/generated: "true"'


def normalize(text: str) -> str:
    docs = re.split(r"(?m)^---\n", text)
    return "---\n".join(blank_data(doc) if GENERATED in doc else doc for doc in docs)


def blank_data(doc: str) -> str:
    out, in_data = [], False
    for line in doc.splitlines(keepends=True):
        if re.match(r"^(data|stringData):\s*$", line):
            in_data = True
        elif in_data and re.match(r"^\S", line):
            in_data = False
        elif in_data and re.match(r"^  [A-Za-z0-9._-]+: ", line):
            line = re.sub(r"^(  [A-Za-z0-9._-]+: ).*$", r"\1<generated at install>", line)
        out.append(line)
    return "".join(out)


for root in sys.argv[1:]:
    for path in Path(root).rglob("*.yaml"):
        path.write_text(normalize(path.read_text()))
