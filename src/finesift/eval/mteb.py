"""MTEB tasks through the ``mteb`` package (2.x) with finesift as the model.

::

    import mteb
    from finesift import load_embedder
    from finesift.eval.mteb import MTEBEncoder

    model = MTEBEncoder(load_embedder("Qwen/Qwen3-Embedding-0.6B"), instructions={"SciFact": "..."})
    results = mteb.evaluate(model, mteb.get_tasks(tasks=["SciFact"]))

Queries carry the Qwen3 instruction and documents none, as in the official evaluation; tasks
without a query/document split (STS, clustering, classification) get the instruction on every
text. Each task's instruction comes from the official table and rules
(:mod:`finesift.eval.task_instructions`); ``instructions`` maps a task name to an override.
:class:`MTEBReranker` is the second stage of the reranking protocol (an mteb cross-encoder).
``mteb`` is imported only for the ``mteb_model_meta`` properties.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from finesift.embedding.embedder import Embedder, InputType
from finesift.errors import MissingDependency
from finesift.eval.task_instructions import TaskInstruction, is_retrieval, metadata_instruction
from finesift.rerank.base import Reranker

#: MTEB data sometimes holds empty texts; the embedder refuses them, so they become this.
EMPTY_TEXT = "(empty)"


def import_mteb() -> Any:
    try:
        import mteb
    except ImportError as exc:
        raise MissingDependency("mteb", "mteb", "needed to run MTEB tasks") from exc
    return mteb


class MTEBEncoder:
    """An ``mteb`` EncoderProtocol over an :class:`Embedder` (cosine similarity, optional MRL ``dim``)."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        dim: int | None = None,
        instructions: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        self.embedder = embedder
        self.dim = dim
        self.instructions = dict(instructions or {})
        self.name = name or embedder.model_id

    @property
    def mteb_model_meta(self) -> Any:
        return _model_meta(
            self.name,
            self.embedder.fingerprint().get("revision"),
            embed_dim=self.dim or self.embedder.dimension,
            similarity_fn_name=import_mteb().models.model_meta.ScoringFunction.COSINE,
            use_instructions=self.embedder.info.query_format == "qwen3",
        )

    def instruction_for(self, task_metadata: Any) -> TaskInstruction:
        """The task's instruction: the override in ``instructions``, else the official one."""
        return _instruction(task_metadata, self.instructions)

    def encode(
        self,
        inputs: Iterable[Mapping[str, Any]],
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """(n, d) float32, L2-normalised, for every text in the batches of ``inputs``."""
        texts = [str(t) if str(t).strip() else EMPTY_TEXT for batch in inputs for t in batch["text"]]
        side = getattr(prompt_type, "value", prompt_type)
        task = self.instruction_for(task_metadata)
        instruction: str | None = task.query
        input_type: InputType = "query"
        if side in ("document", "passage"):
            instruction = task.document
            input_type = "document" if instruction is None else "query"
        return self.embedder.encode(
            texts, input_type=input_type, instruction=instruction, dim=self.dim
        ).vectors

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Cosine matrix (n1, n2); a 0-d array when both inputs are single vectors (``float()`` works)."""
        x, y = np.asarray(embeddings1), np.asarray(embeddings2)
        scores = np.asarray(_unit(np.atleast_2d(x)) @ _unit(np.atleast_2d(y)).T, dtype=np.float32)
        return scores.reshape(()) if x.ndim == 1 and y.ndim == 1 else scores

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        a, b = np.atleast_2d(np.asarray(embeddings1)), np.atleast_2d(np.asarray(embeddings2))
        return np.asarray((_unit(a) * _unit(b)).sum(axis=1), dtype=np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def _instruction(task_metadata: Any, overrides: Mapping[str, str]) -> TaskInstruction:
    name = task_metadata.name
    if name in overrides:
        text = overrides[name]
        retrieval = is_retrieval(str(getattr(task_metadata, "type", "Retrieval")))
        return TaskInstruction(text, None if retrieval else text, "override")
    return metadata_instruction(task_metadata)


def _model_meta(name: str, revision: object, **fields: Any) -> Any:
    meta = import_mteb().models.ModelMeta
    path_name = name if "/" in name else f"finesift/{name.strip('/').replace('/', '__')}"
    return meta.create_empty({"name": path_name, "revision": str(revision or "local"), **fields})


class MTEBReranker:
    """An ``mteb`` CrossEncoderProtocol over a :class:`Reranker`: P(yes) per (query, document) pair,
    with the task's instruction (the query side of the official table, or ``instructions``)."""

    def __init__(
        self, reranker: Reranker, *, instructions: Mapping[str, str] | None = None, name: str | None = None
    ) -> None:
        self.reranker = reranker
        self.instructions = dict(instructions or {})
        self.name = name or reranker.model_id
        #: mteb's experiment_kwargs: results of different first stages go to different folders.
        self.experiment: dict[str, str] = {}

    @property
    def mteb_model_meta(self) -> Any:
        fingerprint = self.reranker.backend.fingerprint()
        extra = {"experiment_kwargs": dict(self.experiment)} if self.experiment else {}
        return _model_meta(self.name, fingerprint.get("revision"), similarity_fn_name=None, **extra)

    def instruction_for(self, task_metadata: Any) -> TaskInstruction:
        return _instruction(task_metadata, self.instructions)

    def predict(
        self,
        inputs1: Iterable[Mapping[str, Any]],
        inputs2: Iterable[Mapping[str, Any]],
        *,
        task_metadata: Any,
        **kwargs: Any,
    ) -> np.ndarray:
        """(n,) float32 scores in [0, 1] for the n pairs (row i of ``inputs1`` with row i of ``inputs2``)."""
        queries = [str(t) for batch in inputs1 for t in batch["text"]]
        docs = [str(t) if str(t).strip() else EMPTY_TEXT for batch in inputs2 for t in batch["text"]]
        instruction = self.instruction_for(task_metadata).query
        scores = np.zeros(len(queries), dtype=np.float32)
        for query, rows in _runs(queries):
            scores[rows] = self.reranker.score(
                query if query.strip() else EMPTY_TEXT, [docs[i] for i in rows], instruction=instruction
            )
        return scores


def _runs(queries: list[str]) -> list[tuple[str, list[int]]]:
    """Row indices grouped by query text, in first-seen order (pairs of one query arrive together)."""
    groups: dict[str, list[int]] = {}
    for i, query in enumerate(queries):
        groups.setdefault(query, []).append(i)
    return list(groups.items())
