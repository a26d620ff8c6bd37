#!/usr/bin/env bash
# Refresh constraints/pinned.txt, the tested set of versions that the README's commands install:
# the newest releases that pyproject.toml allows, with torch held at constraints/torch.txt.
#
#   pip install -e '.[dev]' && bash scripts/lock.sh     # refresh, then run `bash .ci/run` before committing
#   bash scripts/lock.sh --keep                         # after editing pyproject.toml: move only what must
#   bash scripts/lock.sh --check                        # fail if pyproject.toml changed without a refresh
set -euo pipefail
cd "$(dirname "$0")/.."
out=constraints/pinned.txt
upgrade=(--upgrade)
if [ "${1:-}" = "--keep" ]; then
  upgrade=()  # keep every pin that still satisfies pyproject.toml
elif [ "${1:-}" = "--check" ]; then
  out="$(mktemp)"
  cp constraints/pinned.txt "$out"
  upgrade=()  # keep every pin that still satisfies pyproject.toml; add or move only what must change
fi
python -m uv pip compile pyproject.toml --extra all --extra dev \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --constraint constraints/torch.txt "${upgrade[@]}" --no-emit-index-url --quiet \
  --custom-compile-command "bash scripts/lock.sh" \
  --output-file "$out"
if [ "$out" != constraints/pinned.txt ]; then
  if ! diff -u constraints/pinned.txt "$out"; then
    echo "constraints/pinned.txt is out of date with pyproject.toml: run bash scripts/lock.sh" >&2
    exit 1
  fi
  echo "constraints/pinned.txt is current with pyproject.toml"
fi
