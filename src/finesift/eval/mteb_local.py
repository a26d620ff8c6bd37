"""mteb retrieval tasks over local data: a BEIR folder, or tiny in-memory slices for tests.

mteb's own tasks download their data from the Hugging Face hub. These build the same kind of task
(:class:`mteb.AbsTaskRetrieval`, scored by mteb's own evaluator) from data already on this machine,
so a run needs no network::

    task = beir_task("../shared/data/cosqa", split="test")
    mteb.evaluate(model, [task], cache=None)

:func:`local_retrieval_task` also takes ``top_ranked`` (a reranking task: each query's candidates)
and ``changed_qrels`` (a FollowIR task: query ids ``<id>-og`` / ``<id>-changed``, scored by p-MRR
exactly as mteb scores Core17/News21/Robust04InstructionRetrieval). ``mteb`` is imported only
when a task is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finesift.eval.datasets import Qrels, load_beir
from finesift.eval.mteb import import_mteb


@dataclass(frozen=True)
class LocalQuery:
    """A query's text and, for instruction tasks, its instruction (mteb appends it to the text)."""

    text: str
    instruction: str | None = None


@dataclass
class LocalData:
    """One split of a retrieval task held in memory: ids to texts, qrels, optional candidates."""

    corpus: Mapping[str, str]
    queries: Mapping[str, LocalQuery | str]
    qrels: Qrels
    top_ranked: Mapping[str, Sequence[str]] | None = None
    changed_qrels: Mapping[str, Sequence[str]] | None = None
    split: str = "test"
    languages: Sequence[str] = field(default_factory=lambda: ["eng-Latn"])


def local_retrieval_task(
    name: str,
    data: LocalData,
    *,
    main_score: str | None = None,
    description: str | None = None,
    dataset: Mapping[str, str] | None = None,
) -> Any:
    """An mteb retrieval task named ``name`` whose data is ``data`` (already loaded, never fetched).

    ``description`` becomes the task's instruction (the Qwen3 rule); ``dataset`` is mteb's
    ``{"path", "revision"}``: mteb keeps a result only while the revision is the same.
    """
    mteb = import_mteb()
    kind = "Retrieval"
    if data.changed_qrels is not None:
        kind = "InstructionReranking" if data.top_ranked is not None else "InstructionRetrieval"
    elif data.top_ranked is not None:
        kind = "Reranking"
    metadata = mteb.TaskMetadata(
        name=name,
        description=description or f"{name}: local data evaluated offline by finesift.",
        reference=None,
        dataset=dict(dataset or {"path": f"local/{name}", "revision": "local"}),
        type=kind,
        category="t2t",
        modalities=["text"],
        eval_splits=[data.split],
        eval_langs=list(data.languages),
        main_score=main_score or ("p-MRR" if data.changed_qrels is not None else "ndcg_at_10"),
        date=None,
        domains=None,
        task_subtypes=None,
        license=None,
        annotations_creators=None,
        dialect=None,
        sample_creation=None,
        bibtex_citation="",
    )
    # mteb reads the metadata from the class (unloading a task drops an instance's own copy)
    methods = {**_TASK_METHODS, "metadata": metadata}
    return type(_class_name(name), (_abstask_retrieval(),), methods)(data=data)


def beir_task(root: str | Path, *, split: str = "test", name: str | None = None) -> Any:
    """A BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) as an mteb task.

    Named after the folder; document text is ``title + " " + text`` (stripped), as in
    :func:`load_beir` and in mteb. The dataset revision is the corpus hash, so a result that
    ``finesift mteb`` kept for the folder is run again once its documents change.
    """
    path = Path(root).expanduser().resolve()
    beir = load_beir(path, split)
    data = LocalData(
        dict(zip(beir.doc_ids, beir.doc_texts, strict=True)), beir.queries, beir.qrels, split=split
    )
    return local_retrieval_task(
        name or path.name,
        data,
        description=f"Given a query, retrieve relevant documents from the local BEIR folder {path.name}.",
        dataset={"path": str(path), "revision": beir.corpus_hash()},
    )


def _class_name(name: str) -> str:
    return "Local" + "".join(c for c in name.title() if c.isalnum())


def _init(self: Any, *, data: LocalData, **kwargs: Any) -> None:
    self.local_data = data
    _abstask_retrieval().__init__(self, **kwargs)


def _load_data(self: Any, num_proc: int | None = None, **kwargs: Any) -> None:
    from datasets import Dataset

    data: LocalData = self.local_data
    queries = [_query_row(qid, q) for qid, q in data.queries.items()]
    corpus = [{"id": doc_id, "text": text, "title": ""} for doc_id, text in data.corpus.items()]
    top_ranked = {q: list(ids) for q, ids in data.top_ranked.items()} if data.top_ranked else None
    split = {
        "corpus": Dataset.from_list(corpus),
        "queries": Dataset.from_list(queries),
        "relevant_docs": {q: dict(judged) for q, judged in data.qrels.items()},
        "top_ranked": top_ranked,
    }
    self.dataset = {"default": {data.split: split}}
    self.data_loaded = True


def _query_row(qid: str, query: LocalQuery | str) -> dict[str, Any]:
    if isinstance(query, str):
        return {"id": qid, "text": query}
    row: dict[str, Any] = {"id": qid, "text": query.text}
    if query.instruction is not None:
        row["instruction"] = query.instruction
    return row


def _task_specific_scores(
    self: Any,
    scores: dict[str, dict[str, float]],
    qrels: Qrels,
    results: dict[str, dict[str, float]],
    hf_split: str,
    hf_subset: str,
) -> dict[str, Any]:
    """p-MRR and the og/changed scores through mteb's own function, as its FollowIR tasks do."""
    changed = self.local_data.changed_qrels
    if changed is None:
        return {}
    from mteb._evaluators.retrieval_metrics import evaluate_p_mrr_change

    changed_qrels = {q: list(ids) for q, ids in changed.items()}
    return dict(evaluate_p_mrr_change(qrels, results, changed_qrels, self.k_values))


_TASK_METHODS: dict[str, Any] = {
    "__init__": _init,
    "load_data": _load_data,
    "task_specific_scores": _task_specific_scores,
}


def _abstask_retrieval() -> Any:
    import_mteb()
    from mteb.abstasks import AbsTaskRetrieval

    return AbsTaskRetrieval
