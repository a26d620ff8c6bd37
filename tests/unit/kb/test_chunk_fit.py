"""The chunk size of a new KB fits its embedding model's window: no chunk is truncated by dense search.

The reproduction: all-MiniLM-L6-v2 reads 256 tokens, the KB chunked at 400, and indexing logged
"122 of 273 texts exceeded 256 tokens and were truncated". Here the tiny models read 64 and 48 tokens.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from finesift.kb.knowledge_base import KnowledgeBase
from finesift.kb.spec import CHUNK_MARGIN, fit_chunk_size
from finesift.settings import DEFAULT_CHUNK_SIZE, Settings

pytest.importorskip("lancedb")

TEXT = "\n\n".join(
    f"Section {i}. The cache keeps hot rows in memory so that repeated reads skip the disk; "
    f"eviction follows least recent use, and writes go through to the table {i}." * 3
    for i in range(12)
)


def index(tmp_path: Path, settings: Settings) -> KnowledgeBase:
    source = tmp_path / "doc.md"
    source.write_text(TEXT, encoding="utf-8")
    kb = KnowledgeBase.create("kb", settings=settings)
    kb.add([source])
    return kb


def chunk_lengths(kb: KnowledgeBase) -> list[int]:
    """Tokens the embedder reads for each stored chunk (special tokens included)."""
    snapshot = kb.store.snapshot()
    texts = [c.text for d in snapshot.documents() for c in snapshot.chunks(d.doc_id)]
    assert texts
    return kb.embedder.count_tokens(texts)


@pytest.mark.parametrize("model", ["st", "qwen3"])
def test_the_default_chunk_size_fits_the_model(model, tmp_path, caplog, request):
    if model == "st":
        path = request.getfixturevalue("tiny_st_model")  # max_seq_length 64
        embedding = {"model": str(path), "device": "cpu"}
    else:
        path = request.getfixturevalue("tiny_embedding_model")
        embedding = {"model": str(path), "device": "cpu", "max_length": 48}
    settings = Settings(home=tmp_path / "home", embedding=embedding, reranker={"model": "none"})
    with caplog.at_level(logging.WARNING), index(tmp_path, settings) as kb:
        window = kb.embedder.info.max_length
        assert window in (64, 48)
        assert kb.manifest.chunk_size < window and kb.manifest.chunk_overlap < kb.manifest.chunk_size
        lengths = chunk_lengths(kb)
        assert len(lengths) > 3 and max(lengths) <= window, (max(lengths), window)
    assert not [r for r in caplog.records if "truncated" in r.getMessage()]


def test_an_explicit_chunk_size_over_the_limit_is_kept_with_a_warning(tmp_path, caplog, tiny_embedding_model):
    embedding = {"model": str(tiny_embedding_model), "device": "cpu", "max_length": 48}
    settings = Settings(
        home=tmp_path / "home", embedding=embedding, reranker={"model": "none"}, kb={"chunk_size": 200}
    )
    with caplog.at_level(logging.WARNING), index(tmp_path, settings) as kb:
        assert kb.manifest.chunk_size == 200
    assert any("chunk size 200 exceeds" in r.getMessage() for r in caplog.records)


def test_fit_chunk_size():
    # Qwen3 reads 8192: the default 400 stands; MiniLM reads 256 with 2 special tokens.
    assert fit_chunk_size(None, 64, max_input=8192, overhead=1) == (DEFAULT_CHUNK_SIZE, 64)
    assert fit_chunk_size(None, 64, max_input=256, overhead=2) == (256 - 2 - CHUNK_MARGIN, 64)
    size, overlap = fit_chunk_size(None, 64, max_input=64, overhead=2)
    assert size == 64 - 2 - CHUNK_MARGIN and overlap == size // 4
    assert fit_chunk_size(300, 64, max_input=256, overhead=2) == (300, 64)
