"""The reranker's kernels against this CPU's matmul rate: what a faster reranking path could gain.

    python benchmarks/cpu_kernels.py --rounds 9 --out benchmarks/results/cpu-kernels-xeon.json

At the true Qwen3-Reranker-0.6B shape (from ``<shared>/models/qwen3-0.6b`` or ``--config``), one
prefix-cached row (``--prefix`` tokens cached, ``--tail`` new ones), bf16, this process's threads:

- ``linear_bf16``: the packed forward's matmul (``--tokens`` rows x hidden -> intermediate), the rate
  every other kernel is compared with;
- ``linear_int8``: the same matmul through oneDNN's int8 linear (AMX/VNNI), activations quantized per
  tensor, weights per output channel; its cosine against fp32 is on random data and says nothing of a
  trained model's outliers;
- ``attention_masked``: what the engine ran per row and layer until 2026-12-06 (SDPA, the tail's queries
  over prefix and tail keys with a boolean mask);
- ``attention_padded_causal``: what it runs now: the same call with ``is_causal`` and the queries padded
  with ``--prefix`` unused rows in front, so SDPA skips the blocks above the diagonal (outputs identical);
- ``attention_causal_tail``: SDPA over the tail alone with ``is_causal`` (no prefix: a lower bound that
  skips the masked blocks);
- ``attention_flex``: ``flex_attention`` compiled by inductor with the same prefix-causal block mask
  (skipped without a C++ compiler).

Kernels alternate within each round; the JSON has each one's median and spread of milliseconds and its
GFLOP/s (attention counts only the visible query-key pairs).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE.parents[1] / "shared" / "models" / "qwen3-0.6b" / "Qwen3-Reranker-0.6B" / "config.json"


def shape(config: Path) -> dict[str, int]:
    cfg = json.loads(config.read_text(encoding="utf-8"))
    return {
        "hidden": cfg["hidden_size"],
        "intermediate": cfg["intermediate_size"],
        "heads": cfg["num_attention_heads"],
        "kv_heads": cfg["num_key_value_heads"],
        "head_dim": cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"],
    }


def linears(s: dict[str, int], tokens: int) -> tuple[dict[str, Callable[[], Any]], dict[str, float]]:
    """The bf16 and int8 matmul of one MLP projection, and the int8 result's cosine against fp32."""
    import torch
    from torch.nn import functional as F

    x, w = torch.randn(tokens, s["hidden"]), torch.randn(s["intermediate"], s["hidden"]) * 0.02
    xb, wb = x.bfloat16(), w.bfloat16()
    x_scale = float(x.abs().max()) / 127
    qx = torch.clamp(torch.round(x / x_scale), -128, 127).to(torch.int8)
    w_scale = w.abs().amax(1) / 127
    qw = torch.clamp(torch.round(w / w_scale[:, None]), -128, 127).to(torch.int8)
    packed = torch.ops.onednn.qlinear_prepack(qw, list(x.shape))
    zeros = torch.zeros(s["intermediate"], dtype=torch.int64)

    def int8() -> Any:
        return torch.ops.onednn.qlinear_pointwise(
            qx, x_scale, 0, packed, w_scale, zeros, None, 1.0, 0, torch.bfloat16, "none", [], ""
        )

    cos = F.cosine_similarity(int8().double().flatten(), F.linear(x, w).double().flatten(), dim=0)
    kernels = {"linear_bf16": lambda: F.linear(xb, wb), "linear_int8": int8}
    return kernels, {"linear_int8_cos_random": round(float(cos), 6)}


def attentions(s: dict[str, int], prefix: int, tail: int) -> dict[str, Callable[[], Any]]:
    import torch
    from torch.nn import functional as F

    bf = torch.bfloat16
    q = torch.randn(1, s["heads"], tail, s["head_dim"], dtype=bf)
    k, v = (torch.randn(1, s["kv_heads"], prefix + tail, s["head_dim"], dtype=bf) for _ in range(2))
    mask = torch.arange(prefix + tail)[None, :] <= torch.arange(tail)[:, None] + prefix
    kt, vt = k[:, :, prefix:].contiguous(), v[:, :, prefix:].contiguous()
    qpad = torch.cat([torch.zeros(1, s["heads"], prefix, s["head_dim"], dtype=bf), q], dim=2)
    out: dict[str, Callable[[], Any]] = {
        "attention_masked": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True),
        "attention_padded_causal": lambda: F.scaled_dot_product_attention(
            qpad, k, v, is_causal=True, enable_gqa=True
        )[:, :, prefix:],
        "attention_causal_tail": lambda: F.scaled_dot_product_attention(
            q, kt, vt, is_causal=True, enable_gqa=True
        ),
    }
    flex = _flex(q, k, v, prefix, tail)
    if flex is not None:
        out["attention_flex"] = flex
    return out


def _flex(q: Any, k: Any, v: Any, prefix: int, tail: int) -> Callable[[], Any] | None:
    sys.path.insert(0, str(HERE.parent / "src"))
    from finesift.runtime.fused import compiler_found

    if not compiler_found():
        return None
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    def visible(b: Any, h: Any, qi: Any, ki: Any) -> Any:
        return ki <= qi + prefix

    block = create_block_mask(visible, None, None, tail, prefix + tail, device="cpu")
    compiled = torch.compile(flex_attention)
    return lambda: compiled(q, k, v, block_mask=block, enable_gqa=True)


def flops(s: dict[str, int], name: str, tokens: int, prefix: int, tail: int) -> float:
    if name.startswith("linear"):
        return 2.0 * tokens * s["hidden"] * s["intermediate"]
    keys = tail * (tail + 1) // 2 + (0 if name == "attention_causal_tail" else prefix * tail)
    return 4.0 * s["heads"] * s["head_dim"] * keys  # QKᵀ and PV, 2 FLOPs per multiply-add


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument(
        "--prefix", type=int, default=90, help="cached prompt tokens (system, instruction, query)"
    )
    parser.add_argument("--tail", type=int, default=390, help="new tokens of one row (document and suffix)")
    parser.add_argument("--tokens", type=int, default=4096, help="rows of the matmul (one packed batch)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    s = shape(args.config)
    kernels, extra = linears(s, args.tokens)
    kernels.update(attentions(s, args.prefix, args.tail))
    times: dict[str, list[float]] = {name: [] for name in kernels}
    with torch.inference_mode():
        for fn in kernels.values():  # warm-up (and the flex compile)
            fn()
        for _ in range(args.rounds):
            for name, fn in kernels.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    result = {
        name: _summary(t, flops(s, name, args.tokens, args.prefix, args.tail)) for name, t in times.items()
    }
    bf16 = result["linear_bf16"]["gflops"]
    for row in result.values():
        row["of_linear_bf16"] = round(row["gflops"] / bf16, 3)
    report = {
        "command": "python benchmarks/cpu_kernels.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "shape": s,
        "row": {"prefix": args.prefix, "tail": args.tail},
        "kernels": result,
        **extra,
    }
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


def _summary(seconds: list[float], flop: float) -> dict[str, float]:
    median = statistics.median(seconds)
    return {
        "ms_median": round(median * 1e3, 3),
        "ms_min": round(min(seconds) * 1e3, 3),
        "ms_max": round(max(seconds) * 1e3, 3),
        "gflops": round(flop / median / 1e9, 1),
    }


if __name__ == "__main__":
    main()
