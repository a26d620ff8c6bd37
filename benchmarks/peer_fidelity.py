"""Helpers of the CPU peer benchmark: prompt ids, fidelity against fp32, the CPU and its nominal bf16 peak."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

#: bf16 FLOPs per cycle per core: AMX-BF16 tiles (Intel: 1,024), AVX512-BF16 (2 FMA ports x 32 pairs
#: x 2), else fp32 FMA on AVX2 (2 ports x 8 lanes x 2): the widest unit the CPU's flags name.
FLOPS_PER_CYCLE = (("amx_bf16", 1024), ("avx512_bf16", 128), ("avx2", 32))


def prompt_ids(tok: Any, jobs: list[dict[str, Any]], max_length: int) -> list[list[int]]:
    """Every pair's reranker prompt, exactly as finesift builds it, as token ids."""
    from finesift.rerank.prompts import PromptTokens, pair_ids

    tokens = PromptTokens.from_tokenizer(tok)
    out = []
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
            out.append(list(ids))
    return out


def yes_no(tok: Any) -> list[int]:
    """[yes id, no id] of the reranker's answer tokens."""
    return [int(tok.convert_tokens_to_ids("yes")), int(tok.convert_tokens_to_ids("no"))]


def _values(runs: list[dict[str, Any]]) -> Any:
    return next((r["values"] for r in runs if "values" in r), None)


def fidelity(task: str, runs: dict[str, list[dict[str, Any]]], truth_name: str) -> dict[str, Any]:
    """Embed: min cosine of each engine's vectors to fp32's; rerank: max |ΔP(yes)| to fp32's."""
    truth = _values(runs.get(truth_name, []))
    if truth is None:
        return {}
    t = np.asarray(truth, dtype=np.float64)
    out: dict[str, Any] = {"against": truth_name}
    for name, engine_runs in runs.items():
        values = _values(engine_runs)
        if name == truth_name or values is None:
            continue
        v = np.asarray(values, dtype=np.float64)
        if task == "embed":
            cos = (v * t).sum(axis=1) / np.linalg.norm(v, axis=1) / np.linalg.norm(t, axis=1)
            out[name] = {"min_cosine": round(float(cos.min()), 6)}
        else:
            out[name] = {"max_abs_delta_p_yes": float(f"{np.abs(v - t).max():.3g}")}
    return out


def cpu_details() -> dict[str, Any]:
    """The CPU as lscpu names it, its clock, and the flags that decide the bf16 and int8 paths."""
    info = Path("/proc/cpuinfo").read_text(encoding="utf-8") if Path("/proc/cpuinfo").is_file() else ""
    flags = set(re.search(r"^flags\s*:(.*)$", info, re.M).group(1).split()) if "flags" in info else set()
    mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M)
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")
    return {
        "cpu_mhz": float(mhz.group(1)) if mhz else None,
        "flags": {f: f in flags for f in wanted},
        "logical_cpus": os.cpu_count(),
    }


def nominal_peak(threads: int) -> dict[str, Any]:
    """bf16 peak of ``threads`` cores: FLOPs per cycle of the widest unit x the nominal clock (cpuinfo)."""
    details = cpu_details()
    unit, per_cycle = next(((f, n) for f, n in FLOPS_PER_CYCLE if details["flags"].get(f)), ("scalar", 2))
    ghz = (details["cpu_mhz"] or 0.0) / 1000
    return {
        "gflops": round(per_cycle * ghz * threads, 1),
        "unit": unit,
        "flops_per_cycle_per_core": per_cycle,
        "ghz": ghz,
        "cores": threads,
        "how": "FLOPs/cycle/core of the widest bf16 unit the CPU flags name x cpuinfo MHz x threads",
    }
