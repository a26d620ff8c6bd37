#!/usr/bin/env bash
# Everything issue 27 asks of a lent GPU, in one call of the device tool (docs/development/gpu.md):
#
#   here:   bash scripts/device_stage.sh                  # wheels, configs, workloads into .device/
#   device: run(command="bash benchmarks/device_session.sh", carry=[".device"], timeout_s=480)
#   again:  run(command="bash benchmarks/device_session.sh server train", ...)   # only those steps
#
# Steps (default: all, in this order; each under its own time limit, so one hang loses only itself):
#   env     nvidia-smi, python, torch, transformers, the GPU's bf16 matmul rate
#   tests   the gpu-marked tests (pytest -m gpu)
#   engine  benchmarks/run.py on the mixed workload: embedding and reranking, finesift against the
#           model-card code (its default dtype, and fp32 for fidelity) and sentence-transformers
#   mfu     benchmarks/run.py on 1,024 texts of exactly 512 tokens: embedding MFU
#   server  benchmarks/server_load.py: /v1/embeddings and /v1/rerank at concurrency 1, 16 and 64
#   train   benchmarks/train_throughput.py: full fine-tuning at global batch 1,024 with GradCache
# What comes back ($OUT, at most 8 files): summary.txt (a line per step: rc, seconds), session.log,
# engine-gpu.json, engine-gpu-uniform.json, server-gpu.json, train-gpu.json.
#
# DEVICE=cpu SCALE=smoke STAGE=DIR rehearses every step on a CPU at toy sizes (2 decoder layers, a few
# texts), in an environment that holds only the device image's packages plus the staged wheels.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/finesift-device-out}
DEVICE=${DEVICE:-cuda}
SCALE=${SCALE:-full}
STAGE=${STAGE:-.device}
WORK=${WORK:-/tmp/finesift-device}
PY=${PY:-python3}
STEPS=${*:-env tests engine mfu server train}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false PYTHONWARNINGS=ignore HF_HUB_OFFLINE=1
mkdir -p "$OUT" "$WORK"
LOG=$OUT/session.log
SUMMARY=$OUT/summary.txt
RERANK_SYSTEMS=finesift,finesift-nocache,finesift-packed,reference-default,reference-fp32,finesift-fp32

if [ "$SCALE" = smoke ]; then
  LAYERS=2 TEXTS=12 QUERIES=1 CANDIDATES=6 UNIFORM=8 REQUESTS=24 CONC=1,4
  TRAIN=(--layers 2 --batch-size 8 --mini-batch-sizes 4 --max-length 32 --steps 1)
else
  LAYERS=0 TEXTS=512 QUERIES=8 CANDIDATES=40 UNIFORM=1024 REQUESTS=400 CONC=1,16,64
  TRAIN=(--batch-size 1024 --mini-batch-sizes 128 --max-length 128 --steps 2)
fi

step() {  # step NAME SECONDS COMMAND...: run it under a time limit, log it, add its line to the summary
  local name=$1 limit=$2 began=$SECONDS rc
  shift 2
  echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*" >>"$LOG"
  # bash -c: COMMAND may be one of the functions below (exported before the loop)
  timeout --kill-after=10 "$limit" bash -c '"$@"' step "$@" >>"$LOG" 2>&1
  rc=$?
  printf '%-8s rc=%-3s %4d s\n' "$name" "$rc" $((SECONDS - began)) | tee -a "$SUMMARY"
}

setup() {  # the staged wheels beside the image's packages, finesift from src/, the shared configs
  if [ ! -d "$STAGE/wheels" ]; then
    echo "no $STAGE/wheels: run scripts/device_stage.sh here first" | tee -a "$SUMMARY"
    exit 2
  fi
  if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" "$STAGE"/wheels/*.whl >>"$LOG" 2>&1; then
    echo "wheel install failed (session.log)" | tee -a "$SUMMARY"
    exit 2
  fi
  export PYTHONPATH=$PWD/src:$WORK/site${PYTHONPATH:+:$PYTHONPATH}
  mkdir -p "$WORK/shared" && tar -xzf "$STAGE/shared.tar.gz" -C "$WORK/shared"
}

env_report() {
  command -v nvidia-smi >/dev/null && nvidia-smi
  "$PY" - <<'PY'
import platform, time, torch, transformers
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "transformers", transformers.__version__)
import finesift, pydantic, fastapi
print("finesift from", finesift.__file__, "pydantic", pydantic.VERSION, "fastapi", fastapi.__version__)
if torch.cuda.is_available():
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    rate = 10 * 2 * 8192**3 / (time.perf_counter() - t) / 1e12
    print(torch.cuda.get_device_name(), "bf16 8192^3:", round(rate, 1), "TFLOP/s")
PY
}

bench() {  # bench OUTFILE ARGS...: benchmarks/run.py on the staged configs, models built once in $WORK
  local out=$1
  shift
  "$PY" benchmarks/run.py --device "$DEVICE" --shared "$WORK/shared" --models-dir "$WORK/models" --init hf \
    --layers "$LAYERS" --out "$out" "$@"
}

serve_load() {  # the engine step's models (built here when this step runs alone), under load
  local paths rc
  mapfile -t paths < <("$PY" benchmarks/models.py --shared "$WORK/shared" --models-dir "$WORK/models" \
    --init hf --layers "$LAYERS")
  [ "${#paths[@]}" = 2 ] || return 2
  "$PY" benchmarks/server_load.py --embedding-model "${paths[0]}" --reranker-model "${paths[1]}" \
    --device "$DEVICE" --dtype auto --endpoint embeddings,rerank --concurrency "$CONC" \
    --requests "$REQUESTS" --ready-timeout 150 --server-log "$WORK/server.log" >"$OUT/server-gpu.json"
  rc=$?
  echo "--- the server's last output lines:" && tail -n 30 "$WORK/server.log"
  return $rc
}

setup
export OUT DEVICE WORK PY LAYERS CONC REQUESTS
export -f env_report bench serve_load
for s in $STEPS; do
  case $s in
    env) step env 90 env_report ;;
    tests)
      step tests 240 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/unit/runtime/test_gpu_defaults.py ;;
    engine)
      step engine 330 bench "$OUT/engine-gpu.json" --workload "$STAGE/workload-mixed.json" \
        --texts "$TEXTS" --queries "$QUERIES" --candidates "$CANDIDATES" \
        --embed-systems finesift,finesift-packed,reference-default,reference-fp32,sentence-transformers \
        --rerank-systems "$RERANK_SYSTEMS" ;;
    mfu)
      step mfu 150 bench "$OUT/engine-gpu-uniform.json" --task embed \
        --workload "$STAGE/workload-uniform.json" --texts "$UNIFORM" --max-length 512 --ref-batch 64 \
        --embed-systems finesift,finesift-fp16,reference-default,reference-fp32 ;;
    server) step server 180 serve_load ;;
    train)
      step train 240 "$PY" benchmarks/train_throughput.py --device "$DEVICE" --modes full \
        --config-dir "$WORK/shared/models/qwen3-0.6b/Qwen3-Embedding-0.6B" --work "$WORK/train" \
        --out "$OUT/train-gpu.json" "${TRAIN[@]}" ;;
    *) echo "unknown step $s (env tests engine mfu server train)" | tee -a "$SUMMARY" ;;
  esac
done
