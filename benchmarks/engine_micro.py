"""Same-process A/B micro-benchmarks behind docs/performance/engine.md (issue 26), in CPU milliseconds.

    OMP_WAIT_POLICY=passive nice -n 10 python benchmarks/engine_micro.py [--rounds 4]

RMSNorm (torch's ``F.rms_norm`` + cast vs the packed forward's ``fused.rms_norm``) at the 0.6B model's shapes,
and bf16 ``linear`` vs the int8 matmul routes torch offers on CPU. Alternating within one process keeps a
loaded machine's noise out of the ratios; CPU time (both threads) rather than wall time for the same reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def cpu_ms(fn: Callable[[], Any], reps: int = 10) -> float:
    fn()
    start = time.process_time()
    for _ in range(reps):
        fn()
    return round((time.process_time() - start) / reps * 1e3, 2)


def cases() -> dict[str, Callable[[], Any]]:
    import torch
    from torch.nn import functional as F

    from finesift.runtime.fused import rms_norm as _rms_norm

    tokens = 1500
    x, w = torch.randn(tokens, 1024), torch.randn(1024)
    qkv, wq = torch.randn(tokens, 4096).bfloat16(), torch.randn(24, 128)
    xb, wb = torch.randn(2048, 1024).bfloat16(), torch.randn(3072, 1024).bfloat16()
    wi = torch.randint(-127, 127, (3072, 1024), dtype=torch.int8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        torch.backends.quantized.engine = "onednn"
        lin = torch.nn.Sequential(torch.nn.Linear(1024, 3072, bias=False))
        qlin = quantize_dynamic(lin, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return {
        "norm_hidden_before": lambda: F.rms_norm(x, (1024,), w, 1e-6).to(torch.bfloat16),
        "norm_hidden_after": lambda: _rms_norm(x, w, 1e-6, torch.bfloat16),
        "norm_qk_before": lambda: F.rms_norm(
            qkv[:, :3072].float().view(tokens, 24, 128), (128,), None, 1e-6
        ).mul_(wq),
        "norm_qk_after": lambda: _rms_norm(
            qkv[:, :3072].float().view(tokens, 24, 128), wq, 1e-6, torch.float32
        ),
        "linear_bf16": lambda: F.linear(xb, wb),
        "linear_int8_dynamic_onednn": lambda: qlin(xb.float()),
        "weight_int8pack_mm": lambda: torch._weight_int8pack_mm(
            xb, wi, torch.ones(3072, dtype=torch.bfloat16)
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    fns = cases()
    with torch.inference_mode():
        rounds = [{name: cpu_ms(fn) for name, fn in fns.items()} for _ in range(args.rounds)]
    print(json.dumps({"unit": "CPU ms per call", "threads": args.threads, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
