"""BEIR-format data sets: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

Document text is ``title + " " + text`` (stripped). Only queries with at least one positive
judgement are evaluated; the others are dropped and counted, as trec_eval-based tools do.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from finesift.errors import InvalidRequest, NotFound

log = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int]]


@dataclass
class BeirDataset:
    """One split of a BEIR data set, ready to evaluate.

    ``doc_ids``/``doc_texts`` are parallel lists in file order; ``queries`` holds only the queries
    that have a positive judgement (in qrels order); ``qrels`` holds all their judgements.
    """

    name: str
    split: str
    doc_ids: list[str]
    doc_texts: list[str]
    queries: dict[str, str]
    qrels: Qrels
    dropped_queries: int = 0
    missing_queries: int = 0
    empty_docs: int = 0
    _hash: str | None = field(default=None, repr=False)

    def corpus_hash(self) -> str:
        """A digest of the documents exactly as they are encoded (ids and texts)."""
        if self._hash is None:
            digest = hashlib.sha256()
            for doc_id, text in zip(self.doc_ids, self.doc_texts, strict=True):
                digest.update(doc_id.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")
            self._hash = digest.hexdigest()[:32]
        return self._hash

    def subset(self, query_ids: list[str]) -> BeirDataset:
        """The same corpus with only ``query_ids`` (which must be evaluated queries)."""
        return BeirDataset(
            self.name,
            self.split,
            self.doc_ids,
            self.doc_texts,
            {q: self.queries[q] for q in query_ids},
            {q: self.qrels[q] for q in query_ids},
            self.dropped_queries,
            self.missing_queries,
            self.empty_docs,
            self._hash,
        )


def available_splits(root: Path) -> list[str]:
    """Split names that have a ``qrels/<split>.tsv`` file."""
    return sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []


def beir_split_file(root: Path, split: str) -> Path:
    """``root/qrels/<split>.tsv`` of a BEIR folder, after checking the folder holds every file it needs
    (eval and train read BEIR folders through this one check; errors name the missing file)."""
    if not root.is_dir():
        raise NotFound(f"data directory {str(root)!r} does not exist; pass a BEIR-format folder")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (root / name).is_file():
            raise NotFound(
                f"{str(root / name)!r} is missing; a BEIR folder holds corpus.jsonl, "
                "queries.jsonl and qrels/<split>.tsv"
            )
    qrels_file = root / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        splits = ", ".join(available_splits(root)) or "none"
        raise NotFound(f"split {split!r} has no {str(qrels_file)!r}; available splits: {splits}")
    return qrels_file


def load_beir(root: str | Path, split: str = "test") -> BeirDataset:
    """Load one split; clear errors name the missing file or the bad line."""
    path = Path(root).expanduser()
    qrels_file = beir_split_file(path, split)
    doc_ids, doc_texts, empty = _read_corpus(path / "corpus.jsonl")
    all_queries = {rec_id: text for rec_id, text, _ in _read_jsonl(path / "queries.jsonl")}
    qrels = read_qrels(qrels_file)
    return _assemble(path.name, split, (doc_ids, doc_texts, empty), all_queries, qrels)


def _assemble(
    name: str, split: str, corpus: tuple[list[str], list[str], int], all_queries: dict[str, str], qrels: Qrels
) -> BeirDataset:
    positive = {q: judged for q, judged in qrels.items() if any(rel > 0 for rel in judged.values())}
    missing = [q for q in positive if q not in all_queries or not all_queries[q].strip()]
    kept = {q: judged for q, judged in positive.items() if q not in set(missing)}
    if missing:
        log.warning(
            "%d judged queries have no text in queries.jsonl and are skipped (first: %s)",
            len(missing),
            missing[0],
        )
    if not kept:
        raise InvalidRequest(f"split {split!r} of {name!r} has no query with a positive judgement and a text")
    doc_ids, doc_texts, empty = corpus
    return BeirDataset(
        name,
        split,
        doc_ids,
        doc_texts,
        {q: all_queries[q] for q in kept},
        kept,
        dropped_queries=len(qrels) - len(positive),
        missing_queries=len(missing),
        empty_docs=empty,
    )


def _read_jsonl(path: Path) -> Iterator[tuple[str, str, str]]:
    """(id, text, title) per line; blank lines are skipped."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise InvalidRequest(f"{path}:{number} is not valid JSON: {exc}") from exc
            if not isinstance(obj, dict) or "_id" not in obj or not isinstance(obj.get("text", ""), str):
                raise InvalidRequest(
                    f'{path}:{number}: each line must be an object with "_id" and a string "text"'
                )
            title = obj.get("title") or ""
            yield str(obj["_id"]), obj.get("text") or "", title if isinstance(title, str) else str(title)


def _read_corpus(path: Path) -> tuple[list[str], list[str], int]:
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    empty = 0
    for doc_id, text, title in _read_jsonl(path):
        if doc_id in seen:
            raise InvalidRequest(f"{path}: document id {doc_id!r} occurs twice; ids must be unique")
        seen.add(doc_id)
        full = (title + " " + text).strip()
        if not full:
            empty += 1
            continue
        ids.append(doc_id)
        texts.append(full)
    if empty:
        log.warning("%d documents in %s have no text and are left out", empty, path)
    if not ids:
        raise InvalidRequest(f"{path} holds no document with text")
    return ids, texts, empty


def read_qrels(path: Path) -> Qrels:
    """``query-id corpus-id score`` rows (tab-separated, optional header); TREC's 4-column form too."""
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) == 4:
                cols = [cols[0], cols[2], cols[3]]
            if len(cols) != 3:
                raise InvalidRequest(f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score'")
            try:
                score = int(float(cols[2]))
            except ValueError as exc:
                if number == 1:
                    continue  # the header line
                raise InvalidRequest(f"{path}:{number}: score {cols[2]!r} is not a number") from exc
            qrels.setdefault(cols[0], {})[cols[1]] = score
    if not qrels:
        raise InvalidRequest(f"{path} holds no judgements")
    return qrels
