"""MTEB tasks through the ``mteb`` package (2.x) with finesift as the model.

::

    import mteb
    from finesift import load_embedder
    from finesift.eval.mteb import MTEBEncoder

    model = MTEBEncoder(load_embedder("Qwen/Qwen3-Embedding-0.6B"), instructions={"SciFact": "..."})
    results = mteb.evaluate(model, mteb.get_tasks(tasks=["SciFact"]))

Queries carry the Qwen3 instruction and documents none, as in the official evaluation; tasks
without a query/document split (STS, clustering, classification) get the instruction on every
text. ``instructions`` maps a task name to its instruction; other tasks use the embedder's
default. ``mteb`` is imported only for :attr:`MTEBEncoder.mteb_model_meta`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from finesift.embedding.embedder import Embedder, InputType
from finesift.errors import MissingDependency

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
        meta = import_mteb().models.ModelMeta
        fingerprint = self.embedder.fingerprint()
        return meta.create_empty(
            {
                "name": self.name
                if "/" in self.name
                else f"finesift/{self.name.strip('/').replace('/', '__')}",
                "revision": str(fingerprint.get("revision") or "local"),
                "embed_dim": self.dim or self.embedder.dimension,
                "similarity_fn_name": "cosine",
                "use_instructions": self.embedder.info.query_format == "qwen3",
            }
        )

    def instruction_for(self, task_name: str) -> str:
        return self.instructions.get(task_name, self.embedder.default_instruction)

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
        input_type: InputType = "document" if side in ("document", "passage") else "query"
        instruction = self.instruction_for(task_metadata.name) if input_type == "query" else None
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
