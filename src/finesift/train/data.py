"""Training data: a BEIR folder or a JSONL file of pairs, read into :class:`TrainPair` records.

Two formats are accepted:

* a **BEIR folder** (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``), the format ``finesift
  eval`` reads: every judgement with a score > 0 becomes one pair (query, positive document); judgements
  with score <= 0 for the same query become its hard negatives; the whole corpus is kept for mining;
* a **JSONL file** of ``{"query": str, "positive": str | [str, ...], "negatives"?: [str, ...]}``, one
  object a line (ids optional: ``"query_id"``, ``"positive_id"``); its corpus is every distinct positive
  and negative text.

Bad data is an :class:`~finesift.errors.InvalidRequest` that names the file and the line. The
fingerprint is a sha256 over the canonical content (pairs in order, then the corpus), independent of
file layout, and goes into the lineage of what is trained on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finesift.errors import InvalidRequest, NotFound
from finesift.eval.datasets import beir_split_file, read_qrels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainPair:
    """One training instance: a query, its positive text and optional hard negatives."""

    query: str
    positive: str
    negatives: tuple[str, ...] = ()
    query_id: str | None = None
    positive_id: str | None = None


@dataclass(frozen=True)
class TrainData:
    """Pairs to train on, the corpus texts to mine negatives from, and the content fingerprint."""

    pairs: tuple[TrainPair, ...]
    corpus: tuple[str, ...]
    fingerprint: str
    source: str
    split: str | None = None
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.pairs)


class EmptyText(InvalidRequest):
    """A query or positive whose text is empty (``skip_empty`` drops such pairs instead)."""


def load_pairs(path: str | Path, split: str = "train", *, skip_empty: bool = False) -> TrainData:
    """Load training pairs from a BEIR folder (``split`` picks the qrels) or a JSONL file.

    ``skip_empty`` drops pairs whose query or positive text is empty (counted in ``skipped``, the first
    one logged) instead of refusing the data; every other defect stays an error.
    """
    root = Path(path).expanduser()
    skipped: list[str] = []
    if root.is_dir():
        pairs, corpus = _load_beir(root, split, skipped if skip_empty else None)
        used_split: str | None = split
    elif root.is_file():
        pairs, corpus = _load_jsonl(root, skipped if skip_empty else None)
        used_split = None
    else:
        raise NotFound(f"training data {str(root)!r} does not exist; pass a BEIR folder or a JSONL file")
    if not pairs:
        raise InvalidRequest(f"{root} holds no training pair (a query with a positive)")
    if skipped:
        log.warning("skipped %d pairs with an empty text (first: %s)", len(skipped), skipped[0])
    return TrainData(
        tuple(pairs), tuple(corpus), fingerprint(pairs, corpus), str(root), used_split, len(skipped)
    )


def fingerprint(pairs: list[TrainPair] | tuple[TrainPair, ...], corpus: list[str] | tuple[str, ...]) -> str:
    """sha256 over the canonical JSON of every pair (in order) and every corpus text (in order)."""
    digest = hashlib.sha256()
    for pair in pairs:
        record = [pair.query, pair.positive, list(pair.negatives)]
        digest.update(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
    digest.update(b"\x00corpus\n")
    for text in corpus:
        digest.update(json.dumps(text, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; bad JSON or a non-object names the line."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise InvalidRequest(f"{path}:{number} is not valid JSON: {exc}") from exc
            if not isinstance(obj, dict):
                raise InvalidRequest(f"{path}:{number}: each line must be a JSON object")
            yield number, obj


def _text(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}: {what} is missing or empty")
    if not value.strip():
        raise EmptyText(f"{where}: {what} is missing or empty")
    return value


# --- JSONL pairs ---------------------------------------------------------------------------------


def _load_jsonl(path: Path, skipped: list[str] | None) -> tuple[list[TrainPair], list[str]]:
    pairs: list[TrainPair] = []
    corpus: dict[str, None] = {}
    for number, obj in _objects(path):
        where = f"{path}:{number}"
        try:
            rows, texts = _jsonl_pairs(obj, where)
        except EmptyText as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
            continue
        pairs.extend(rows)
        corpus.update(dict.fromkeys(texts))
    return pairs, list(corpus)


def _jsonl_pairs(obj: dict[str, Any], where: str) -> tuple[list[TrainPair], list[str]]:
    """The pairs of one JSONL line and the texts it adds to the corpus."""
    query = _text(obj.get("query"), where, '"query"')
    positives = obj.get("positive", obj.get("pos"))
    if isinstance(positives, str):
        positives = [positives]
    if not isinstance(positives, list) or not positives:
        raise InvalidRequest(f'{where}: "positive" is missing; each line needs a positive text')
    negatives = obj.get("negatives", obj.get("neg", []))
    if not isinstance(negatives, list):
        raise InvalidRequest(f'{where}: "negatives" must be a list of texts')
    negs = tuple(_text(n, where, f'"negatives"[{i}]') for i, n in enumerate(negatives))
    query_id = _optional_id(obj.get("query_id"))
    positive_id = _optional_id(obj.get("positive_id")) if len(positives) == 1 else None
    texts = [
        _text(positive, where, '"positive"' if len(positives) == 1 else f'"positive"[{i}]')
        for i, positive in enumerate(positives)
    ]
    rows = [TrainPair(query, text, negs, query_id, positive_id) for text in texts]
    return rows, [*texts, *negs]


def _optional_id(value: Any) -> str | None:
    return None if value is None else str(value)


# --- BEIR folder ---------------------------------------------------------------------------------


def _load_beir(root: Path, split: str, skipped: list[str] | None) -> tuple[list[TrainPair], list[str]]:
    qrels_file = beir_split_file(root, split)
    corpus = _read_texts(root / "corpus.jsonl", with_title=True)
    queries = _read_texts(root / "queries.jsonl", with_title=False)
    qrels = read_qrels(qrels_file)
    pairs: list[TrainPair] = []
    for query_id, judged in qrels.items():
        try:
            pairs.extend(_beir_pairs(query_id, judged, queries, corpus, qrels_file))
        except EmptyText as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
    if not pairs:
        raise InvalidRequest(f"{qrels_file} has no positive judgement (score > 0); nothing to train on")
    return pairs, [text for text, _ in corpus.values() if text]


def _beir_pairs(
    query_id: str,
    judged: dict[str, int],
    queries: dict[str, tuple[str, int]],
    corpus: dict[str, tuple[str, int]],
    qrels_file: Path,
) -> list[TrainPair]:
    """One pair per positive judgement of ``query_id``; its score <= 0 judgements are hard negatives."""
    positives = [d for d, score in judged.items() if score > 0]
    if not positives:
        return []  # judged non-relevant only: nothing to learn from it as an anchor
    query = _lookup(queries, query_id, qrels_file, "query", "queries.jsonl")
    negative_ids = [d for d, score in judged.items() if score <= 0]
    negatives = tuple(_lookup(corpus, d, qrels_file, "document", "corpus.jsonl") for d in negative_ids)
    return [
        TrainPair(query, _lookup(corpus, d, qrels_file, "document", "corpus.jsonl"), negatives, query_id, d)
        for d in positives
    ]


def _read_texts(path: Path, *, with_title: bool) -> dict[str, tuple[str, int]]:
    """id -> (text, line); an empty text is kept as "" and is an error only when a pair needs it."""
    texts: dict[str, tuple[str, int]] = {}
    for number, obj in _objects(path):
        if "_id" not in obj:
            raise InvalidRequest(f'{path}:{number}: the line has no "_id"')
        text = obj.get("text") or ""
        title = (obj.get("title") or "") if with_title else ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise InvalidRequest(f'{path}:{number}: "text" and "title" must be strings')
        doc_id = str(obj["_id"])
        if doc_id in texts:
            raise InvalidRequest(f"{path}:{number}: id {doc_id!r} occurs twice; ids must be unique")
        texts[doc_id] = ((title + " " + text).strip(), number)
    return texts


def _lookup(texts: dict[str, tuple[str, int]], key: str, qrels_file: Path, what: str, name: str) -> str:
    if key not in texts:
        line = _qrels_line(qrels_file, key)
        raise InvalidRequest(f"{qrels_file}:{line}: {what} id {key!r} is not in {name}")
    text, number = texts[key]
    if not text:
        raise EmptyText(f"{qrels_file.parent.parent / name}:{number}: {what} {key!r} has an empty text")
    return text


def _qrels_line(path: Path, key: str) -> int:
    """The first line of a qrels file that mentions ``key`` (for error messages only)."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if key in line.split():
                return number
    return 0
