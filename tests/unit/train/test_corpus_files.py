"""``synth --corpus FILES`` reads files as ``index`` does: caps and bounded parsing, refusals reported."""

from __future__ import annotations

import logging
from pathlib import Path

from finesift import load_embedder
from finesift.settings import KBSettings
from finesift.testing.hostile import shared_stream_pdf
from finesift.train.passages import from_corpus


def test_a_hostile_file_is_skipped_and_reported_not_parsed(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("Water boils at one hundred degrees at sea level.\n", encoding="utf-8")
    (folder / "hostile.pdf").write_bytes(shared_stream_pdf(pages=50))  # minutes of pypdf without caps
    kb = KBSettings(max_pages=10, parse_workers=0)
    with caplog.at_level(logging.WARNING, logger="finesift.train.passages"):
        passages = from_corpus(folder, embedder=load_embedder("fake"), chunk_size=64, chunk_overlap=8, kb=kb)
    assert [p.source for p in passages] == ["good.md"]
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "skipped hostile.pdf" in warning and "kb.max_pages" in warning


def test_files_over_the_size_cap_are_skipped(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "big.md").write_text("word " * 300_000, encoding="utf-8")
    (folder / "small.md").write_text("Water boils at one hundred degrees at sea level.\n", encoding="utf-8")
    kb = KBSettings(max_file_mb=1.0, parse_workers=0)
    with caplog.at_level(logging.WARNING, logger="finesift.train.passages"):
        passages = from_corpus(folder, embedder=load_embedder("fake"), chunk_size=64, chunk_overlap=8, kb=kb)
    assert [p.source for p in passages] == ["small.md"]
    assert "kb.max_file_mb" in caplog.text
