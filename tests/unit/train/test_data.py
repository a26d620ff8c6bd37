"""Training data: BEIR folders and JSONL pairs, errors that name the file and line, the fingerprint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from finesift.errors import InvalidRequest, NotFound
from finesift.train import TrainPair, load_pairs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "beir"


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _beir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(FIXTURES / "tiny-en", root)
    return root


def test_beir_folder_gives_one_pair_per_positive(tmp_path: Path) -> None:
    root = _beir(tmp_path)
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td3\t1\nq2\td6\t1\nq2\td1\t0\n"
    (root / "qrels" / "train.tsv").write_text(qrels)
    data = load_pairs(root, split="train")
    assert [(p.query_id, p.positive_id) for p in data.pairs] == [("q1", "d1"), ("q1", "d3"), ("q2", "d6")]
    assert data.pairs[0].query == "how to add an item to the end of a python list"
    assert data.pairs[0].positive.startswith("Python lists A Python list")
    # score-0 judgements become hard negatives of their query
    assert data.pairs[2].negatives == (data.pairs[0].positive,)
    assert len(data.corpus) == 12 and data.split == "train"
    assert len(data.fingerprint) == 64


def test_jsonl_pairs_and_their_corpus(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"query": "q a", "positive": "doc a", "negatives": ["doc b", "doc c"]},
            {"query": "q b", "positive": ["doc b", "doc d"]},
        ],
    )
    data = load_pairs(path)
    assert data.pairs == (
        TrainPair("q a", "doc a", ("doc b", "doc c")),
        TrainPair("q b", "doc b"),
        TrainPair("q b", "doc d"),
    )
    assert data.corpus == ("doc a", "doc b", "doc c", "doc d")
    assert data.split is None


def test_fingerprint_follows_content_not_layout(tmp_path: Path) -> None:
    rows = [{"query": "q a", "positive": "doc a"}]
    one = load_pairs(_jsonl(tmp_path / "a.jsonl", rows))
    (tmp_path / "b.jsonl").write_text('\n{ "positive" : "doc a", "query": "q a" }\n\n', encoding="utf-8")
    two = load_pairs(tmp_path / "b.jsonl")
    three = load_pairs(_jsonl(tmp_path / "c.jsonl", [{"query": "q a", "positive": "doc A"}]))
    assert one.fingerprint == two.fingerprint != three.fingerprint


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"pairs.jsonl:2 is not valid JSON"),
        ('["a list"]', r"pairs.jsonl:2: each line must be a JSON object"),
        ('{"positive": "doc"}', r'pairs.jsonl:2: "query" is missing or empty'),
        ('{"query": "  ", "positive": "doc"}', r'pairs.jsonl:2: "query" is missing or empty'),
        ('{"query": "q"}', r'pairs.jsonl:2: "positive" is missing'),
        ('{"query": "q", "positive": []}', r'pairs.jsonl:2: "positive" is missing'),
        ('{"query": "q", "positive": ""}', r'pairs.jsonl:2: "positive" is missing or empty'),
        ('{"query": "q", "positive": "d", "negatives": "x"}', r'pairs.jsonl:2: "negatives" must be a list'),
        ('{"query": "q", "positive": "d", "negatives": [""]}', r'pairs.jsonl:2: "negatives"\[0\] is missing'),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"query": "ok", "positive": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InvalidRequest, match=message):
        load_pairs(path)


def test_empty_jsonl_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pairs.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InvalidRequest, match="no training pair"):
        load_pairs(tmp_path / "pairs.jsonl")


def test_missing_path_and_split(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_pairs(tmp_path / "nope")
    with pytest.raises(NotFound, match="available splits: dev, test"):
        load_pairs(_beir(tmp_path), split="train")


def test_beir_missing_query_id_names_the_qrels_line(tmp_path: Path) -> None:
    root = _beir(tmp_path)
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq99\td1\t1\n")
    with pytest.raises(InvalidRequest, match=r"train.tsv:3: query id 'q99' is not in queries.jsonl"):
        load_pairs(root, split="train")


def test_beir_missing_doc_id_names_the_qrels_line(tmp_path: Path) -> None:
    root = _beir(tmp_path)
    (root / "qrels" / "train.tsv").write_text("q1\td1\t1\nq2\td404\t1\n")
    with pytest.raises(InvalidRequest, match=r"train.tsv:2: document id 'd404' is not in corpus.jsonl"):
        load_pairs(root, split="train")


def test_beir_empty_texts_name_their_line(tmp_path: Path) -> None:
    root = _beir(tmp_path)
    _jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "fine"}, {"_id": "q2", "text": ""}])
    (root / "qrels" / "train.tsv").write_text("q1\td1\t1\nq2\td1\t1\n")
    with pytest.raises(InvalidRequest, match=r"queries.jsonl:2: query 'q2' has an empty text"):
        load_pairs(root, split="train")
    _jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "fine"}])
    _jsonl(root / "corpus.jsonl", [{"_id": "d0", "text": "x"}, {"_id": "d1", "title": "", "text": " "}])
    (root / "qrels" / "train.tsv").write_text("q1\td1\t1\n")
    with pytest.raises(InvalidRequest, match=r"corpus.jsonl:2: document 'd1' has an empty text"):
        load_pairs(root, split="train")


def test_beir_bad_lines(tmp_path: Path) -> None:
    root = _beir(tmp_path)
    (root / "qrels" / "train.tsv").write_text("q1\td1\t1\n")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "ok"}\n{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(InvalidRequest, match=r'queries.jsonl:2: the line has no "_id"'):
        load_pairs(root, split="train")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "fine"}\n{oops\n', encoding="utf-8")
    with pytest.raises(InvalidRequest, match=r"queries.jsonl:2 is not valid JSON"):
        load_pairs(root, split="train")


def test_beir_without_positives(tmp_path: Path) -> None:
    root = _beir(tmp_path)
    (root / "qrels" / "train.tsv").write_text("q1\td1\t0\nq2\td2\t0\n")
    with pytest.raises(InvalidRequest, match=r"train.tsv has no positive judgement"):
        load_pairs(root, split="train")


def test_skip_empty_drops_and_counts(tmp_path: Path) -> None:
    root = _beir(tmp_path)
    _jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "fine"}, {"_id": "q2", "text": ""}])
    (root / "qrels" / "train.tsv").write_text("q1\td1\t1\nq2\td1\t1\n")
    data = load_pairs(root, split="train", skip_empty=True)
    assert [p.query_id for p in data.pairs] == ["q1"] and data.skipped == 1
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"query": "ok", "positive": "fine"}\n{"query": "", "positive": "x"}\n', encoding="utf-8")
    data = load_pairs(path, skip_empty=True)
    assert len(data.pairs) == 1 and data.skipped == 1
    path.write_text('{"query": "ok"}\n', encoding="utf-8")
    with pytest.raises(InvalidRequest, match='"positive" is missing'):
        load_pairs(path, skip_empty=True)  # only empty texts are skipped; other defects stay errors
