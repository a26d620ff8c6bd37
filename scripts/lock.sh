#!/usr/bin/env bash
# Refresh constraints/pinned.txt, the tested set of versions that the README's commands install:
# the newest releases that pyproject.toml allows, with torch held at constraints/torch.txt.
#
#   pip install -e '.[dev]' && bash scripts/lock.sh
#
# Then run the suite on the new set (bash .ci/run) before committing the file.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m uv pip compile pyproject.toml --extra all --extra dev \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --constraint constraints/torch.txt --upgrade --no-emit-index-url \
  --custom-compile-command "bash scripts/lock.sh" \
  --output-file constraints/pinned.txt
