"""A realistic mixed workload from the shared BEIR sets: Chinese paragraphs, code, instructed queries.

Embedding: documents (cmrc2018 paragraphs, cosqa code) and queries with the Qwen3 instruction,
interleaved in a seeded random order. Reranking: per query, its 40 BM25 candidates from the same
corpus (real candidates, the usual first stage), alternating Chinese and code queries.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

ZH_TASK = "Given a Chinese search query, retrieve relevant Chinese passages that answer the query"
CODE_TASK = "Given a natural language query, retrieve code snippets that answer the query"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _doc_text(doc: dict[str, Any]) -> str:
    return f"{doc.get('title', '')} {doc['text']}".strip()


def load_sets(data: Path) -> dict[str, tuple[list[str], list[str]]]:
    """{name: (document texts, query texts)} for cmrc2018 and cosqa."""
    sets = {}
    for name in ("cmrc2018", "cosqa"):
        docs = [_doc_text(d) for d in _jsonl(data / name / "corpus.jsonl")]
        queries = [q["text"] for q in _jsonl(data / name / "queries.jsonl")]
        sets[name] = (docs, queries)
    return sets


def embedding_texts(data: Path, n: int, *, seed: int = 0) -> list[str]:
    """``n`` texts: 40 % Chinese paragraphs, 30 % code, 30 % instructed queries, shuffled."""
    rng = random.Random(seed)
    sets = load_sets(data)
    n_zh, n_code = round(n * 0.4), round(n * 0.3)
    n_query = n - n_zh - n_code
    texts = rng.sample(sets["cmrc2018"][0], n_zh) + rng.sample(sets["cosqa"][0], n_code)
    for i in range(n_query):
        name, task = ("cmrc2018", ZH_TASK) if i % 2 == 0 else ("cosqa", CODE_TASK)
        texts.append(f"Instruct: {task}\nQuery:{rng.choice(sets[name][1])}")
    rng.shuffle(texts)
    return texts


def rerank_jobs(data: Path, queries: int, candidates: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``queries`` jobs {query, instruction, documents}: each query's top BM25 candidates."""
    from finesift.lexical import BM25Index

    rng = random.Random(seed)
    sets = load_sets(data)
    jobs = []
    for i in range(queries):
        name, task = ("cmrc2018", ZH_TASK) if i % 2 == 0 else ("cosqa", CODE_TASK)
        docs, qs = sets[name]
        index = BM25Index(list(range(len(docs))), docs)
        query = rng.choice(qs)
        hits = index.search(query, candidates)
        jobs.append({"query": query, "instruction": task, "documents": [docs[int(h)] for h, _ in hits]})
    return jobs


def uniform_texts(data: Path, n: int, tokens: int, tokenizer_dir: Path, *, seed: int = 0) -> list[str]:
    """``n`` documents of at least ``tokens`` tokens each (paragraphs and code joined until long enough).

    With ``--max-length tokens`` every row is then cut to exactly that length: the fixed-shape batch an
    MFU figure is quoted at.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rng = random.Random(seed)
    pool = [d for docs, _ in load_sets(data).values() for d in docs]
    texts = []
    for _ in range(n):
        parts: list[str] = []
        while len(tok("\n".join(parts))["input_ids"]) < tokens:
            parts.append(rng.choice(pool))
        texts.append("\n".join(parts))
    return texts


def load(path: Path) -> dict[str, Any]:
    """A workload file: {"texts": [...], "jobs": [...]} (either may be empty)."""
    found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return {"texts": found.get("texts") or [], "jobs": found.get("jobs") or []}


def main(argv: list[str] | None = None) -> None:
    """Write a workload file, for a machine that has no ``<shared>/data`` (a lent GPU)."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    p.add_argument("--texts", type=int, default=32, help="embedding texts (mixed, as benchmarks/run.py)")
    p.add_argument("--queries", type=int, default=1, help="rerank queries (0: no rerank jobs)")
    p.add_argument("--candidates", type=int, default=40)
    p.add_argument("--uniform-tokens", type=int, default=0, help="texts of at least N tokens instead")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    data = args.shared / "data"
    tokenizer = args.shared / "models" / "qwen3-0.6b" / "Qwen3-Embedding-0.6B"
    texts = (
        uniform_texts(data, args.texts, args.uniform_tokens, tokenizer)
        if args.uniform_tokens
        else embedding_texts(data, args.texts)
    )
    jobs = rerank_jobs(data, args.queries, args.candidates) if args.queries else []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"texts": texts, "jobs": jobs}, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
