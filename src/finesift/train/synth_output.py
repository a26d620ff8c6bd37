"""Filter the synthesized queries and write the BEIR folder and the report.

Kept: a usable query whose cosine similarity to its passage (the embedder, query formatted as at
retrieval) is at least ``min_cosine`` and whose normalised text was not kept before. Queries of
one passage land in the same split (no passage is in both train and dev), chosen by seed.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from finesift.embedding.embedder import Embedder
from finesift.train.passages import Passage

REPORT, DROPPED = "synth-report.json", "synth-dropped.jsonl"
#: Example reasons kept per category in the report (all of them are in synth-dropped.jsonl).
EXAMPLES = 3
QRELS_HEADER = "query-id\tcorpus-id\tscore\n"


@dataclass(frozen=True)
class OutputPolicy:
    """What decides the written set: the cosine filter and the train/dev split."""

    min_cosine: float
    seed: int
    dev_fraction: float


@dataclass
class SynthReport:
    """Counts of one run; ``dropped`` by category, ``reasons`` a few examples of each."""

    out: str
    passages: int
    generated: int
    kept: int
    train: int
    dev: int
    dropped: dict[str, int]
    reasons: dict[str, list[dict[str, str]]]
    min_cosine: float
    mean_cosine: float | None
    #: The cosine that 90 % of the queries retrieving their own passage first reach (this embedder's scale).
    suggested_min_cosine: float | None = None
    resumed: int = 0
    ran: int = 0
    elapsed_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, out: Path) -> None:
        write_atomic(out / REPORT, json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n")

    def summary(self) -> str:
        journal = f"; {self.resumed} from the journal, {self.ran} asked now" if self.resumed else ""
        lines = [
            f"{self.generated} queries generated for {self.passages} passages; {self.kept} kept "
            f"({self.train} train, {self.dev} dev) in {self.out}{journal}",
        ]
        for kind, count in self.dropped.items():
            if count:
                example = self.reasons[kind][0]
                lines.append(f"  dropped {count} {kind.replace('_', ' ')}: e.g. {example['reason']}")
        if self.dropped.get("low_cosine") and self.suggested_min_cosine is not None:
            lines.append(
                f"  hint: cosines depend on the embedder; 90 % of the queries that retrieve their own "
                f"passage first score at least {self.suggested_min_cosine}: re-run with --min-cosine "
                f"{self.suggested_min_cosine} to filter again (the journal is reused, no chat calls)"
            )
        return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def normalised(query: str) -> str:
    """What counts as the same query: case, punctuation and spacing ignored."""
    return " ".join(re.sub(r"[\W_]+", " ", query.casefold()).split())


def _filter(
    records: Sequence[dict[str, Any]], cosines: dict[str, float], min_cosine: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for r in records:
        if r["status"] != "ok":
            kind = "invalid_json" if r["status"] == "invalid_json" else "llm_failure"
            dropped.append({"key": r["key"], "kind": kind, "reason": r.get("reason", r["status"])})
            continue
        cos = cosines[r["key"]]
        if cos < min_cosine:
            reason = f"cosine {cos:.3f} < {min_cosine}: {r['query'][:80]!r}"
            dropped.append({"key": r["key"], "kind": "low_cosine", "reason": reason})
            continue
        norm = normalised(r["query"])
        if norm in seen:
            reason = f"same query as {seen[norm]}: {r['query'][:80]!r}"
            dropped.append({"key": r["key"], "kind": "duplicate", "reason": reason})
            continue
        seen[norm] = r["key"]
        kept.append({**r, "cosine": round(cos, 4)})
    return kept, dropped


def _cosines(
    records: Sequence[dict[str, Any]], embedder: Embedder, vectors: dict[str, np.ndarray]
) -> tuple[dict[str, float], float | None]:
    """Each ok query's cosine to its passage, and the suggested ``min_cosine`` (see :func:`suggest`)."""
    ok = [r for r in records if r["status"] == "ok"]
    if not ok:
        return {}, None
    queries = embedder.embed_queries([r["query"] for r in ok])
    cosines = {r["key"]: float(q @ vectors[r["passage"]]) for r, q in zip(ok, queries, strict=True)}
    return cosines, suggest(ok, queries, vectors, cosines)


def suggest(
    ok: Sequence[dict[str, Any]],
    queries: np.ndarray,
    vectors: dict[str, np.ndarray],
    cosines: dict[str, float],
) -> float | None:
    """The 10th percentile of the cosines of queries whose own passage is their nearest (floored to 0.01).

    Those queries are useful whatever the embedder's scale, so their scores calibrate the filter.
    """
    ids = list(vectors)
    matrix = np.stack([vectors[i] for i in ids])
    position = {pid: n for n, pid in enumerate(ids)}
    own = np.array([position[r["passage"]] for r in ok])
    first = np.concatenate(
        [np.argmax(queries[s : s + 1024] @ matrix.T, axis=1) for s in range(0, len(ok), 1024)]
    )
    scores = [cosines[r["key"]] for r, hit in zip(ok, first == own, strict=True) if hit]
    return float(np.floor(np.percentile(scores, 10) * 100) / 100) if scores else None


def _split(kept: Sequence[dict[str, Any]], seed: int, dev_fraction: float) -> set[str]:
    """The passages whose queries form the dev split."""
    groups = sorted({r["passage"] for r in kept})
    random.Random(seed).shuffle(groups)
    n_dev = round(len(groups) * dev_fraction)
    if dev_fraction > 0 and len(groups) >= 2:
        n_dev = min(max(n_dev, 1), len(groups) - 1)
    return set(groups[:n_dev])


def _corpus_row(passage: Passage) -> dict[str, Any]:
    """A BEIR corpus line; the source goes to metadata (BEIR readers prepend a title to the text)."""
    row: dict[str, Any] = {"_id": passage.id, "title": "", "text": passage.text}
    if passage.source:
        row["metadata"] = {"source": passage.source}
    return row


def finalize(
    out: Path,
    passages: Sequence[Passage],
    records: Sequence[dict[str, Any]],
    *,
    embedder: Embedder,
    passage_vectors: dict[str, np.ndarray],
    policy: OutputPolicy,
) -> SynthReport:
    """Filter ``records`` (journal order) and write corpus, queries, qrels and the dropped list."""
    cosines, suggested = _cosines(records, embedder, passage_vectors)
    kept, dropped = _filter(records, cosines, policy.min_cosine)
    dev = _split(kept, policy.seed, policy.dev_fraction)
    corpus = "".join(json.dumps(_corpus_row(p), ensure_ascii=False) + "\n" for p in passages)
    queries, qrels = [], {"train": [QRELS_HEADER], "dev": [QRELS_HEADER]}
    for n, r in enumerate(kept):
        meta = {k: r[k] for k in ("character", "question_type", "difficulty", "length", "language", "cosine")}
        queries.append(json.dumps({"_id": f"q{n}", "text": r["query"], "metadata": meta}, ensure_ascii=False))
        qrels["dev" if r["passage"] in dev else "train"].append(f"q{n}\t{r['passage']}\t1\n")
    write_atomic(out / "corpus.jsonl", corpus)
    write_atomic(out / "queries.jsonl", "".join(q + "\n" for q in queries))
    for split, rows in qrels.items():
        write_atomic(out / "qrels" / f"{split}.tsv", "".join(rows))
    write_atomic(out / DROPPED, "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in dropped))
    kinds = ("invalid_json", "llm_failure", "low_cosine", "duplicate")
    return SynthReport(
        out=str(out),
        passages=len({r["passage"] for r in records}),
        generated=len(records),
        kept=len(kept),
        train=len(qrels["train"]) - 1,
        dev=len(qrels["dev"]) - 1,
        dropped={k: sum(d["kind"] == k for d in dropped) for k in kinds},
        reasons={k: [d for d in dropped if d["kind"] == k][:EXAMPLES] for k in kinds},
        min_cosine=policy.min_cosine,
        mean_cosine=round(float(np.mean(list(cosines.values()))), 4) if cosines else None,
        suggested_min_cosine=suggested,
    )
