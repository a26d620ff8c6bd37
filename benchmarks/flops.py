"""Model FLOPs, ratios, fidelity and the issue's targets, computed from the systems' results."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

FINESIFT = "finesift"


def linear_params(shape: dict[str, int]) -> int:
    """Weights of one decoder layer's matmuls (q, k, v, o, gate, up, down)."""
    h, q, kv = shape["hidden"], shape["heads"] * shape["head_dim"], shape["kv_heads"] * shape["head_dim"]
    return h * q + 2 * h * kv + q * h + 3 * h * shape["intermediate"]


def sequence_flops(shape: dict[str, int], n: int) -> float:
    """Useful FLOPs of one n-token forward: 2 per weight per token, plus causal QKᵀ and PV."""
    dense = 2 * linear_params(shape) * n
    attention = 2 * shape["heads"] * shape["head_dim"] * n * (n + 1)  # 2 matmuls x 2 FLOP x n(n+1)/2 pairs
    return float(shape["layers"] * (dense + attention))


def ratios(results: dict[str, dict[str, Any]], key: str) -> dict[str, float]:
    """finesift's throughput over every other system's, e.g. ``finesift/reference-fp32``."""
    ours = results.get(FINESIFT, {}).get(key)
    out = {}
    for name, res in results.items():
        if name != FINESIFT and ours and res.get(key):
            out[f"{FINESIFT}/{name}"] = round(ours / res[key], 2)
    return out


def _unit(values: Any) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def embed_fidelity(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Minimum cosine of each system's vectors against fp32 (reference-fp32, else finesift-fp32)."""
    truth_name = next(
        (n for n in ("reference-fp32", "finesift-fp32") if "values" in results.get(n, {})), None
    )
    if truth_name is None:
        return {}
    truth = _unit(results[truth_name]["values"])
    out: dict[str, Any] = {"against": truth_name}
    for name, res in results.items():
        if name != truth_name and "values" in res:
            out[f"{name}_min_cosine"] = round(float((_unit(res["values"]) * truth).sum(axis=1).min()), 6)
    return out


def _flat(scores: list[list[float]], limit: int | None = None) -> np.ndarray:
    return np.asarray([s for job in scores for s in (job[:limit] if limit else job)], dtype=np.float64)


def rerank_fidelity(results: dict[str, dict[str, Any]], subset: int) -> dict[str, Any]:
    """Max |Δscore| against the fp32 model-card code, and prefix-cached vs uncached in fp32."""
    out: dict[str, Any] = {}
    truth = results.get("reference-fp32", {}).get("values")
    for name, res in results.items():
        if truth is None or name == "reference-fp32" or "values" not in res:
            continue
        limit = subset if len(res["values"][0]) < len(truth[0]) else None
        delta = np.abs(_flat(res["values"]) - _flat(truth, limit))
        out[f"{name}_max_abs_delta_vs_reference-fp32"] = float(f"{delta.max():.3g}")
    cached, plain = (results.get(n, {}).get("values") for n in ("finesift-fp32", "finesift-fp32-nocache"))
    if cached is not None and plain is not None:
        out["fp32_prefix_cached_vs_uncached_max_abs_delta"] = float(
            f"{np.abs(_flat(cached) - _flat(plain)).max():.3g}"
        )
    return out


def rerank_tokens(path: Path, jobs: list[dict[str, Any]], max_length: int) -> int:
    """Prompt tokens of all pairs exactly as finesift builds them."""
    from transformers import AutoTokenizer

    from finesift.rerank.prompts import PromptTokens, pair_ids

    tok = AutoTokenizer.from_pretrained(str(path))
    tokens = PromptTokens.from_tokenizer(tok)
    total = 0
    for job in jobs:
        for doc in job["documents"]:
            ids, _ = pair_ids(
                tok,
                tokens,
                instruction=job["instruction"],
                query=job["query"],
                document=doc,
                max_length=max_length,
            )
            total += len(ids)
    return total


def _check(value: float | None, target: float, *, at_least: bool = True) -> dict[str, Any]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {"value": None, "target": target, "met": None}
    return {"value": value, "target": target, "met": value >= target if at_least else value <= target}


#: Dense bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s, no sparsity), by name part; the
#: first part found in the device's name wins, so the PCIe H100 comes before the SXM one.
SPEC_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("H200", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10", 125.0),
)


def spec_peak_tflops(gpu_name: str) -> float | None:
    """The data-sheet dense bf16 peak of a GPU by its name, None for one not in the table."""
    return next((peak for part, peak in SPEC_BF16_TFLOPS if part in gpu_name), None)


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with the measured value and whether it is met."""
    if str(report.get("device", "cpu")).startswith("cuda"):
        return gpu_targets(report)
    emb, rer = report.get("embed", {}), report.get("rerank", {})
    er, rr = emb.get("ratios", {}), rer.get("ratios", {})
    ef, rf = emb.get("fidelity", {}), rer.get("fidelity", {})
    return {
        "embed_vs_reference_default": _check(er.get("finesift/reference-default"), 2.5),
        "embed_vs_reference_fp32": _check(er.get("finesift/reference-fp32"), 8.0),
        "embed_vs_sentence_transformers": _check(er.get("finesift/sentence-transformers"), 2.0),
        "rerank_vs_reference_default": _check(rr.get("finesift/reference-default"), 2.0),
        "rerank_vs_reference_fp32": _check(rr.get("finesift/reference-fp32"), 8.0),
        "embed_mfu_of_bf16_ceiling": _check(
            emb.get("systems", {}).get(FINESIFT, {}).get("mfu_of_bf16_ceiling"), 0.5
        ),
        "embed_bf16_min_cosine_vs_fp32": _check(ef.get("finesift_min_cosine"), 0.999),
        "rerank_bf16_max_abs_delta_vs_fp32": _check(
            rf.get("finesift_max_abs_delta_vs_reference-fp32"), 0.02, at_least=False
        ),
        "rerank_prefix_cached_vs_uncached_fp32": _check(
            rf.get("fp32_prefix_cached_vs_uncached_max_abs_delta"), 1e-5, at_least=False
        ),
    }


def gpu_targets(report: dict[str, Any]) -> dict[str, Any]:
    """The GPU issue's targets: 3x the model card for both models, 40 % MFU for embedding, fp32 fidelity."""
    emb, rer = report.get("embed", {}), report.get("rerank", {})
    er, rr = emb.get("ratios", {}), rer.get("ratios", {})
    ef, rf = emb.get("fidelity", {}), rer.get("fidelity", {})
    ours = emb.get("systems", {}).get(FINESIFT, {})
    return {
        "embed_vs_reference_default": _check(er.get("finesift/reference-default"), 3.0),
        "rerank_vs_reference_default": _check(rr.get("finesift/reference-default"), 3.0),
        "embed_mfu_of_spec_peak": _check(ours.get("mfu_of_spec_peak"), 0.4),
        "embed_bf16_min_cosine_vs_fp32": _check(ef.get("finesift_min_cosine"), 0.999),
        "rerank_bf16_max_abs_delta_vs_fp32": _check(
            rf.get("finesift_max_abs_delta_vs_reference-fp32"), 0.02, at_least=False
        ),
    }
