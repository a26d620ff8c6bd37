"""Parity of finesift with the model-card reference code on random weights of a real Qwen3 shape (fp32).

Prints JSON: min cosine of embeddings (queries with and without instruction, documents; dims 32, 256,
full) and max |Δscore| of the reranker, against `finesift.testing.reference`.

    python benchmarks/parity.py --config ../shared/models/qwen3-0.6b/Qwen3-Embedding-0.6B/config.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from finesift import load_embedder, load_reranker
from finesift.testing.models import build_model, qwen3_config
from finesift.testing.reference import (
    DEFAULT_TASK,
    ReferenceEmbedder,
    ReferenceReranker,
    get_detailed_instruct,
)

QUERIES = ["how do I sort a list in python", "如何优化数据库查询性能？", "what causes tides"]
DOCS = [
    "Use sorted(items) for a new list, or items.sort() in place.",
    "数据库索引可以显著加速查询，但会增加写入开销。" * 4,
    "def add(a, b):\n    return a + b",
    "Tides are caused by the gravitational pull of the moon and the sun.",
]


def shape_from(config_path: str | None, layers: int | None) -> dict:
    if config_path is None:
        return {}
    cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
    keys = (
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
    )
    shape = {k: cfg[k] for k in keys}
    if layers:
        shape["num_hidden_layers"] = layers
    return shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", help="a Qwen3 config.json whose shape to use (default: tiny)")
    parser.add_argument("--layers", type=int, help="override the number of layers")
    args = parser.parse_args()
    shape = shape_from(args.config, args.layers) or None
    out: dict[str, object] = {"shape": shape or "tiny"}
    with tempfile.TemporaryDirectory() as tmp:
        emb_dir = build_model(Path(tmp) / "e", "embedding", config=qwen3_config("embedding", shape))
        emb = load_embedder(str(emb_dir), dtype="float32", device="cpu")
        ref = ReferenceEmbedder(str(emb_dir), dtype=torch.float32)
        full = emb.dimension
        for dim in sorted({32, min(256, full), full}):
            for name, task in (
                ("query_default", DEFAULT_TASK),
                ("query_custom", "Given a question, find code"),
            ):
                ours = emb.embed_queries(QUERIES, instruction=task, dim=dim)
                theirs = ref.embed([get_detailed_instruct(task, q) for q in QUERIES], dim=dim)
                out[f"cos_min_{name}_dim{dim}"] = float((ours * theirs).sum(1).min())
            ours = emb.embed_documents(DOCS, dim=dim)
            out[f"cos_min_documents_dim{dim}"] = float((ours * ref.embed(DOCS, dim=dim)).sum(1).min())
        del emb, ref
        rr_dir = build_model(Path(tmp) / "r", "reranker", config=qwen3_config("reranker", shape))
        ours_rr = load_reranker(str(rr_dir), dtype="float32", device="cpu")
        ref_rr = ReferenceReranker(str(rr_dir), dtype=torch.float32)
        deltas = [np.abs(np.array(ours_rr.score(q, DOCS)) - ref_rr.score(q, DOCS)).max() for q in QUERIES]
        out["rerank_max_abs_delta"] = float(max(deltas))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
