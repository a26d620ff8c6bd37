"""Tiny random Qwen3 checkpoints with the real tokenizer, saved exactly like the official ones.

A 2-layer model with hidden size 64 loads through the same code path as Qwen3-Embedding-0.6B
(``AutoModel``) or Qwen3-Reranker (``AutoModelForCausalLM``). Numbers from random weights mean
nothing; invariants and parity with the reference formulas do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from finesift.testing.reference import DEFAULT_TASK
from finesift.testing.tokenizer import save_tokenizer

VOCAB_SIZE = 151669
TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
}
Kind = Literal["embedding", "reranker"]


def qwen3_config(kind: Kind, shape: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A Qwen3 config.json dict: tiny by default, or any shape (e.g. the true 0.6B one)."""
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643 if kind == "embedding" else 151645,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "max_position_embeddings": 32768 if kind == "embedding" else 40960,
        "max_window_layers": 28,
        "rms_norm_eps": 1e-6,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB_SIZE,
        **(shape or TINY_SHAPE),
        **overrides,
    }


def build_model(
    directory: str | Path,
    kind: Kind,
    *,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    dtype: str = "float32",
    spread: bool = True,
) -> Path:
    """Save a random-weight Qwen3 of ``kind`` (config default: tiny) with the real tokenizer.

    ``spread`` widens every matrix to std 0.08 so tiny models separate inputs; without it the
    weights keep transformers' own initialisation (std ``initializer_range``, 0.02 for Qwen3).
    """
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, Qwen3Config

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    cfg = dict(config or qwen3_config(kind))
    torch.manual_seed(seed)
    qcfg = Qwen3Config(
        **{k: v for k, v in cfg.items() if k not in ("architectures", "model_type", "torch_dtype")}
    )
    auto = AutoModel if kind == "embedding" else AutoModelForCausalLM
    model = auto.from_config(qcfg, dtype=getattr(torch, dtype))
    if spread:
        _spread_weights(model, seed)
    model.save_pretrained(str(path), safe_serialization=True)
    (path / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    save_tokenizer(path, kind)
    if kind == "embedding":
        write_sentence_transformers_config(path, int(cfg["hidden_size"]))
    return path


def write_sentence_transformers_config(path: Path, hidden: int) -> None:
    """The sentence-transformers files Qwen3-Embedding ships: last-token pooling, normalise, query prompt."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {
        "word_embedding_dimension": hidden,
        **{
            f"pooling_mode_{m}": False
            for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens")
        },
        "pooling_mode_lasttoken": True,
        "include_prompt": True,
    }
    prompts = {
        "prompts": {"query": f"Instruct: {DEFAULT_TASK}\nQuery:", "document": ""},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }
    (path / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2), encoding="utf-8")
    (path / "config_sentence_transformers.json").write_text(json.dumps(prompts, indent=2), encoding="utf-8")


def _spread_weights(model: Any, seed: int) -> None:
    """Widen the random init so tiny models give varied vectors and scores, not all ≈ 0.5."""
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2:
                param.copy_(
                    torch.randn(param.shape, generator=gen, dtype=torch.float32).to(param.dtype) * 0.08
                )
            elif "norm" not in name:
                param.zero_()
