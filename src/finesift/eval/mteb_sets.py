"""Named MTEB task sets of the Qwen3 model cards: FollowIR (instruction following) and MLDR (long documents).

::

    from finesift.eval.mteb_sets import TASK_SETS, expand_task_names, set_encoder, followir_scores

    names = expand_task_names(["followir", "SciFact"])   # sets expand, task names pass through
    model = set_encoder(load_embedder("Qwen/Qwen3-Embedding-0.6B"), "mldr")
    results = mteb.evaluate(model, mteb.get_tasks(tasks=list(TASK_SETS["mldr"])))

**FollowIR** is mteb's three InstructionRetrieval tasks (its benchmark "FollowIR"). Each query comes
twice, ``<id>-og`` with the original TREC narrative as instruction and ``<id>-changed`` with an altered
one that makes some of the relevant documents irrelevant; mteb appends the instruction to the query
text and reranks each query's given candidates. The score is p-MRR: how far those documents drop in
the changed run (positive: the model follows the change; 0: it ignores the instruction; negative: it
ranks them higher). mteb computes it (``evaluate_p_mrr_change``); :func:`followir_scores` reads it.

**MLDR** is ``MultiLongDocRetrieval`` (13 languages, Wikipedia / Wudao / mC4 articles, often longer
than the window). The Qwen3-Embedding evaluation runs every task at ``max_length`` 8192 tokens and
lets the tokenizer cut longer texts at the end (``evaluation/run_mteb.sh`` and
``qwen3_embedding_model.py`` of QwenLM/Qwen3-Embedding: ``"max_length": 8192`` in the model kwargs,
``tokenizer(..., truncation=True, max_length=max_length)``). :func:`set_encoder` honours the set's
window on the document side only: a document over it is cut (counted, logged), a query never is (one
that does not fit raises, naming the fix), as finesift's reranker keeps the query whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from finesift.embedding.embedder import Embedder, Embeddings, InputType, OverflowPolicy
from finesift.errors import InvalidRequest
from finesift.eval.mteb import MTEBEncoder

#: Named task sets: set name -> the mteb task names it runs.
TASK_SETS: dict[str, tuple[str, ...]] = {
    "followir": (
        "Core17InstructionRetrieval",
        "News21InstructionRetrieval",
        "Robust04InstructionRetrieval",
    ),
    "mldr": ("MultiLongDocRetrieval",),
}

#: The Qwen3-Embedding evaluation's window (run_mteb.sh: "max_length": 8192 for every task).
CARD_MAX_LENGTH = 8192


@dataclass(frozen=True)
class TaskSetSettings:
    """How a set runs: the score the model card reports, the token window, the splits, its source."""

    main_score: str
    max_length: int = CARD_MAX_LENGTH
    eval_splits: tuple[str, ...] | None = None
    benchmark: str | None = None
    source: str = ""


SET_SETTINGS: dict[str, TaskSetSettings] = {
    "followir": TaskSetSettings(
        main_score="p-MRR",
        benchmark="FollowIR",
        source="mteb's FollowIR benchmark (Weller et al. 2024); p-MRR as mteb computes it",
    ),
    "mldr": TaskSetSettings(
        main_score="ndcg_at_10",
        eval_splits=("test",),
        source="MLDR (BGE-M3, Chen et al. 2024) test split, nDCG@10; window 8192 as the Qwen3 evaluation",
    ),
}


def expand_task_names(names: Iterable[str]) -> list[str]:
    """Task names with every set name (case-insensitive) replaced by its tasks; order kept, no repeats."""
    out: list[str] = []
    for name in names:
        for task in TASK_SETS.get(name.strip().lower(), (name.strip(),)):
            if task and task not in out:
                out.append(task)
    return out


def set_settings(name: str) -> TaskSetSettings:
    """The settings of set ``name``; an unknown name lists the sets."""
    try:
        return SET_SETTINGS[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(SET_SETTINGS))
        raise InvalidRequest(f"unknown task set {name!r}; the sets are: {known}") from None


def set_tasks(name: str) -> list[Any]:
    """mteb's tasks of set ``name`` (metadata only; the data loads when a task runs)."""
    from finesift.eval.mteb import import_mteb

    settings = set_settings(name)
    tasks = TASK_SETS[name.strip().lower()]
    splits = list(settings.eval_splits) if settings.eval_splits else None
    return list(import_mteb().get_tasks(tasks=list(tasks), eval_splits=splits))


class DocumentWindowEmbedder(Embedder):
    """An :class:`Embedder` on the same backend that cuts documents at the window and never a query.

    ``truncated_documents`` counts the documents cut so far (the result file can record it).
    """

    def __init__(self, embedder: Embedder, max_length: int) -> None:
        window = embedder.info.max_length
        if window != max_length:
            raise InvalidRequest(
                f"this set runs at max_length {max_length} (the model card's evaluation window), but the "
                f"embedder's window is {window} tokens; load it with max_length={max_length}"
            )
        super().__init__(embedder.backend, instruction=embedder.default_instruction, on_overflow="truncate")
        self.max_length = max_length
        self.truncated_documents = 0

    def encode(
        self,
        texts: Sequence[str],
        *,
        input_type: InputType,
        instruction: str | None = None,
        dim: int | None = None,
        on_overflow: OverflowPolicy | None = None,
    ) -> Embeddings:
        """Documents over the window are cut (and counted); a query over it raises."""
        if input_type != "document":
            try:
                return super().encode(
                    texts, input_type=input_type, instruction=instruction, dim=dim, on_overflow="error"
                )
            except InvalidRequest as exc:
                raise InvalidRequest(f"a query is never truncated here, only documents: {exc}") from exc
        out = super().encode(texts, input_type=input_type, dim=dim, on_overflow="truncate")
        self.truncated_documents += out.truncated
        return out


def set_encoder(
    embedder: Embedder,
    name: str,
    *,
    max_length: int | None = None,
    instructions: Mapping[str, str] | None = None,
    dim: int | None = None,
) -> MTEBEncoder:
    """The mteb model for set ``name``: the bridge over ``embedder`` with the set's document window.

    ``max_length`` overrides the set's window (the embedder must have been loaded with it).
    """
    window = max_length or set_settings(name).max_length
    return MTEBEncoder(DocumentWindowEmbedder(embedder, window), instructions=instructions, dim=dim)


def followir_scores(results: Any) -> dict[str, float]:
    """Task name -> p-MRR from an mteb run (``mteb.evaluate``'s result) of FollowIR-style tasks."""
    scores: dict[str, float] = {}
    for task in results.task_results:
        for split_scores in task.scores.values():
            for subset in split_scores:
                if "p-MRR" in subset:
                    scores[task.task_name] = float(subset["p-MRR"])
    return scores


def evaluate_followir(model: Any, tasks: Sequence[Any] | None = None, **kwargs: Any) -> dict[str, float]:
    """p-MRR per task of ``model`` (an mteb encoder or cross-encoder) through ``mteb.evaluate``.

    ``tasks`` defaults to the FollowIR set (its data downloads from the hub on first use); ``kwargs``
    go to ``mteb.evaluate`` (``cache=None`` keeps no result files).
    """
    from finesift.eval.mteb import import_mteb

    chosen = list(tasks) if tasks is not None else set_tasks("followir")
    missing = [t.metadata.name for t in chosen if t.metadata.main_score != "p-MRR"]
    if missing:
        raise InvalidRequest(f"not a FollowIR-style task (its main score is not p-MRR): {', '.join(missing)}")
    kwargs.setdefault("show_progress_bar", False)
    return followir_scores(import_mteb().evaluate(model, chosen, **kwargs))
