"""BEIR loading: document text, splits, dropped queries, clear errors, the data hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from finesift.errors import InvalidRequest, NotFound
from finesift.eval.datasets import load_beir, read_qrels


def test_loads_the_fixture(tiny_en: Path) -> None:
    data = load_beir(tiny_en, "test")
    assert len(data.doc_ids) == 12
    assert (
        data.doc_texts[0]
        == "Python lists A Python list is a mutable sequence; append adds an item to the end of a list."
    )
    assert data.doc_texts[data.doc_ids.index("d9")].startswith("Threads run")  # empty title: no leading space
    assert "q7" not in data.queries and data.dropped_queries == 1
    assert len(data.queries) == 7
    assert data.qrels["q1"] == {"d1": 2, "d3": 1}


def test_other_split(tiny_en: Path) -> None:
    assert set(load_beir(tiny_en, "dev").queries) == {"q7", "q2"}


def test_missing_split_lists_the_available_ones(tiny_en: Path) -> None:
    with pytest.raises(NotFound, match="available splits: dev, test"):
        load_beir(tiny_en, "train")


def test_missing_directory_and_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_beir(tmp_path / "nope")
    with pytest.raises(NotFound, match=r"corpus\.jsonl"):
        load_beir(tmp_path)


def _copy(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / "data"))


def test_bad_json_line_names_file_and_line(tiny_en: Path, tmp_path: Path) -> None:
    root = _copy(tiny_en, tmp_path)
    with open(root / "corpus.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    with pytest.raises(InvalidRequest, match=r"corpus\.jsonl:13 is not valid JSON"):
        load_beir(root)


def test_duplicate_ids_are_refused(tiny_en: Path, tmp_path: Path) -> None:
    root = _copy(tiny_en, tmp_path)
    with open(root / "corpus.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"_id": "d1", "text": "again"}) + "\n")
    with pytest.raises(InvalidRequest, match="occurs twice"):
        load_beir(root)


def test_empty_documents_are_left_out_and_counted(tiny_en: Path, tmp_path: Path) -> None:
    root = _copy(tiny_en, tmp_path)
    with open(root / "corpus.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"_id": "blank", "title": " ", "text": ""}) + "\n")
    data = load_beir(root)
    assert data.empty_docs == 1 and "blank" not in data.doc_ids


def test_qrels_without_header_and_trec_format(tmp_path: Path) -> None:
    plain = tmp_path / "a.tsv"
    plain.write_text("q1\td1\t1\nq1\td2\t2\n", encoding="utf-8")
    trec = tmp_path / "b.tsv"
    trec.write_text("q1 0 d1 1\nq2 0 d3 0\n", encoding="utf-8")
    assert read_qrels(plain) == {"q1": {"d1": 1, "d2": 2}}
    assert read_qrels(trec) == {"q1": {"d1": 1}, "q2": {"d3": 0}}


def test_bad_qrels_score(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\tyes\n", encoding="utf-8")
    with pytest.raises(InvalidRequest, match=r"q.tsv:2"):
        read_qrels(path)


def test_corpus_hash_is_stable_and_content_sensitive(tiny_en: Path, tmp_path: Path) -> None:
    first = load_beir(tiny_en).corpus_hash()
    assert first == load_beir(tiny_en, "dev").corpus_hash()
    root = _copy(tiny_en, tmp_path)
    text = (root / "corpus.jsonl").read_text(encoding="utf-8").replace("mutable", "changeable")
    (root / "corpus.jsonl").write_text(text, encoding="utf-8")
    assert load_beir(root).corpus_hash() != first


def test_subset_keeps_the_corpus(tiny_en: Path) -> None:
    data = load_beir(tiny_en)
    small = data.subset(["q1", "q2"])
    assert list(small.queries) == ["q1", "q2"] and small.doc_ids == data.doc_ids
    assert small.corpus_hash() == data.corpus_hash()
