"""Models the harness can always reach offline."""

from __future__ import annotations

from finesift.embedding.sentence_transformers import MINILM_NAMES, minilm_path

__all__ = ["MINILM_NAMES", "minilm_path"]
