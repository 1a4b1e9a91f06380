#!/usr/bin/env bash
# Prints the git ref whose contracts (proto/) `buf breaking` compares against: the last released
# ones. That is the newest tag named v*, when there is one; else the commit main was at before this
# change (the merge base with main, or main's previous commit when HEAD is main itself); else the
# previous commit. Prints nothing in a repository with a single commit.
set -euo pipefail
tag=$(git describe --tags --abbrev=0 --match 'v*' 2>/dev/null || true)
if [[ -n "$tag" ]]; then echo "$tag"; exit 0; fi
for main in origin/main main; do
  git rev-parse --verify -q "$main" >/dev/null || continue
  base=$(git merge-base HEAD "$main")
  if [[ "$base" != "$(git rev-parse HEAD)" ]]; then echo "$base"; exit 0; fi
  git rev-parse --verify -q HEAD~1 >/dev/null && echo "$(git rev-parse HEAD~1)"
  exit 0
done
git rev-parse --verify -q HEAD~1 >/dev/null && git rev-parse HEAD~1 || true
