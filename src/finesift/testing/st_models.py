"""Tiny random sentence-transformers models (a BERT encoder and a cross-encoder), built offline.

They use a small hand-made WordPiece vocabulary, so nothing is downloaded; they load by path
exactly like a real checkpoint. Their numbers mean nothing; loading, pooling and the plumbing do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = [
    "a",
    "an",
    "the",
    "of",
    "to",
    "in",
    "is",
    "it",
    "and",
    "or",
    "for",
    "with",
    "on",
    "by",
    "as",
    "at",
    "from",
    "python",
    "list",
    "dict",
    "json",
    "file",
    "http",
    "date",
    "sort",
    "string",
    "text",
    "query",
    "document",
    "search",
    "find",
    "code",
    "how",
    "what",
    "add",
    "item",
    "end",
    "parse",
    "read",
    "write",
    "send",
    "request",
    "format",
    "replace",
    "match",
    "cook",
    "pasta",
    "water",
    "thread",
    "lock",
    "test",
]
BERT_SHAPE: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}


def _vocab() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    punct = list(".,;:!?'\"()[]{}-_=+/*<>#@&%$")
    return _SPECIAL + _WORDS + letters + ["##" + c for c in letters] + punct


def save_bert_tokenizer(path: Path) -> Any:
    """A BERT WordPiece tokenizer over the tiny vocabulary, saved into ``path``."""
    from transformers import BertTokenizer

    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(_vocab()) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab_file=str(path / "vocab.txt"), do_lower_case=True, model_max_length=128)
    tokenizer.save_pretrained(str(path))
    return tokenizer


def _bert_config(**overrides: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(vocab_size=len(_vocab()), **{**BERT_SHAPE, **overrides})


def build_st_model(
    path: Path, *, pooling: str = "mean", max_seq_length: int = 64, prompts: dict[str, str] | None = None
) -> Path:
    """A SentenceTransformer (BERT -> pooling -> normalise) saved at ``path``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    models = _st_modules()

    torch.manual_seed(0)
    raw = path.parent / f"{path.name}-hf"
    save_bert_tokenizer(raw)
    BertModel(_bert_config()).save_pretrained(str(raw))
    encoder = models.Transformer(str(raw), max_seq_length=max_seq_length)
    pool = models.Pooling(BERT_SHAPE["hidden_size"], pooling_mode=pooling)
    model = SentenceTransformer(modules=[encoder, pool, models.Normalize()], device="cpu", prompts=prompts)
    model.save(str(path))
    return path


def _st_modules() -> Any:
    """The module classes: ``sentence_transformer.modules`` (v6+), else the older ``models``."""
    import importlib

    try:
        return importlib.import_module("sentence_transformers.sentence_transformer.modules")
    except ImportError:
        return importlib.import_module("sentence_transformers.models")


def build_cross_encoder(path: Path, *, num_labels: int = 1) -> Path:
    """A one-label BERT sequence classifier saved at ``path`` (loads as a CrossEncoder)."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    save_bert_tokenizer(path)
    BertForSequenceClassification(_bert_config(num_labels=num_labels)).save_pretrained(str(path))
    return path


def write_modules(path: Path, pooling: dict[str, Any]) -> Path:
    """Only the config files of a sentence-transformers directory (for backend-choice tests)."""
    path.mkdir(parents=True, exist_ok=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling), encoding="utf-8")
    return path
