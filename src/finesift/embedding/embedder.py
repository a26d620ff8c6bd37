"""The embedding request pipeline that sits above every backend: plan -> run -> finish.

:meth:`Embedder.plan` validates input, applies the Qwen3 query instruction, tokenizes once and
enforces the overflow policy; :meth:`Embedder.run` calls the backend; :meth:`Embedder.finish` does
Matryoshka slicing then L2 normalisation. The library, the CLI, the server (around its queue) and
eval all go through these three steps, so no face can get them wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np

from finesift.embedding.base import EmbeddingBackend, EmbeddingOutput, QueryFormat, TokenizingBackend
from finesift.embedding.instructions import DEFAULT_TASK, format_query, resolve_instruction
from finesift.errors import BackendError, InvalidRequest
from finesift.validation import validate_texts

log = logging.getLogger(__name__)

InputType = Literal["query", "document"]
OverflowPolicy = Literal["truncate", "error"]
MIN_DIM = 32
#: One model input: token ids when the backend tokenizes locally, else the formatted text.
ModelInput = str | list[int]


@dataclass(frozen=True)
class Embeddings:
    """``vectors`` (n, d) float32, L2-normalised; token counts per text; how many were truncated."""

    vectors: np.ndarray
    tokens: list[int]
    truncated: int

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)


class EmbeddingInfo:
    """What a served embedding model is: id, full dimension, tokens per text, query format.

    A read-only view: each field is read from the backend when asked (a remote backend learns its
    dimension from a probe request, so nothing is asked that is not used).
    """

    def __init__(self, backend: EmbeddingBackend, *, instruction: str) -> None:
        self._backend = backend
        #: The default query instruction (a sentence).
        self.instruction = instruction

    @property
    def model_id(self) -> str:
        return self._backend.model_id

    @property
    def dimension(self) -> int:
        """Full output dimension; ``dim`` may be 32..dimension."""
        return self._backend.dimension

    @property
    def max_length(self) -> int:
        """Tokens per text; longer texts follow the overflow policy."""
        return self._backend.max_length

    @property
    def query_format(self) -> QueryFormat:
        """``qwen3``: queries take the instruction; ``none``: texts are embedded raw."""
        return self._backend.query_format

    @property
    def backend(self) -> str:
        """The backend class, e.g. ``TransformersEmbedder``."""
        return type(self._backend).__name__

    @property
    def local_tokenizer(self) -> bool:
        """True when the model's own tokenizer runs here (requests are tokenized once, locally)."""
        return isinstance(self._backend, TokenizingBackend)


@dataclass(frozen=True)
class EmbedPlan:
    """A validated request ready to run: one model input per text, in input order.

    ``counts`` are untruncated token counts (``None`` when the backend cannot count locally and
    nobody asked); ``dim`` the Matryoshka dimension of the result.
    """

    inputs: list[ModelInput]
    counts: list[int] | None
    dim: int
    max_length: int

    @property
    def costs(self) -> list[int]:
        """Tokens each text will use (counts capped at the window); needs counts."""
        return [min(n, self.max_length) for n in self.counts or []]

    @property
    def over(self) -> int:
        """How many texts exceed the window (and will be truncated)."""
        return sum(1 for n in self.counts or [] if n > self.max_length)


def validate_dim(dim: object, full: int) -> int:
    """The Matryoshka dimension: ``None`` means full; otherwise an int in 32..full."""
    if dim is None:
        return full
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise InvalidRequest(f"dim must be an integer in {MIN_DIM}..{full}, not {dim!r}")
    if not MIN_DIM <= int(dim) <= full:
        raise InvalidRequest(f"dim {dim} is out of range; this model supports {MIN_DIM}..{full}")
    return int(dim)


def slice_and_normalise(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Matryoshka: keep the first ``dim`` values, then L2-normalise each row (slice first)."""
    head = np.asarray(vectors[:, :dim], dtype=np.float32)
    norms = np.linalg.norm(head, axis=1, keepdims=True)
    if not np.all(np.isfinite(head)) or np.any(norms == 0):
        raise BackendError(
            "the model produced a non-finite or all-zero vector; check the model files and dtype"
        )
    return np.ascontiguousarray(head / norms, dtype=np.float32)


class Embedder:
    """Qwen3-faithful embeddings over any :class:`EmbeddingBackend`."""

    def __init__(
        self,
        backend: EmbeddingBackend,
        *,
        instruction: str | None = None,
        on_overflow: OverflowPolicy = "truncate",
    ) -> None:
        self.backend = backend
        self.default_instruction = resolve_instruction(instruction, default=DEFAULT_TASK)
        self.on_overflow: OverflowPolicy = check_overflow(on_overflow)

    @property
    def info(self) -> EmbeddingInfo:
        """The model's id, full dimension, window, query format and default instruction."""
        return EmbeddingInfo(self.backend, instruction=self.default_instruction)

    @property
    def dimension(self) -> int:
        return self.backend.dimension

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def fingerprint(self, *, policy: bool = True) -> dict[str, object]:
        """The backend's fingerprint plus (unless ``policy`` is false) the query policy."""
        if not policy:
            return self.backend.fingerprint()
        return {
            **self.backend.fingerprint(),
            "query_format": self.backend.query_format,
            "instruction": self.default_instruction,
        }

    def warm_up(self) -> None:
        """Pay one-time costs now (the packed CPU forward's kernel compile); a no-op for most backends."""
        warm_up = getattr(self.backend, "warm_up", None)
        if callable(warm_up):
            warm_up()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Untruncated token counts of ``texts`` as they are (no formatting), special tokens included."""
        return self.backend.count_tokens(texts)

    def embed_queries(
        self, texts: Sequence[str], instruction: str | None = None, dim: int | None = None
    ) -> np.ndarray:
        """(n, d) float32, L2-normalised; queries carry the instruction."""
        return self.encode(texts, input_type="query", instruction=instruction, dim=dim).vectors

    def embed_documents(self, texts: Sequence[str], dim: int | None = None) -> np.ndarray:
        """(n, d) float32, L2-normalised; documents are embedded raw."""
        return self.encode(texts, input_type="document", dim=dim).vectors

    def format(
        self, texts: Sequence[str], *, input_type: InputType, instruction: str | None = None
    ) -> list[str]:
        """The exact strings the model sees."""
        if input_type not in ("query", "document"):
            raise InvalidRequest(f"input_type must be 'query' or 'document', not {input_type!r}")
        if input_type == "document" or self.backend.query_format == "none":
            return list(texts)
        task = resolve_instruction(instruction, default=self.default_instruction)
        return [format_query(t, task) for t in texts]

    def encode(
        self,
        texts: Sequence[str],
        *,
        input_type: InputType,
        instruction: str | None = None,
        dim: int | None = None,
        on_overflow: OverflowPolicy | None = None,
    ) -> Embeddings:
        """Validated, formatted, length-checked, sliced and normalised embeddings."""
        plan = self.plan(
            texts, input_type=input_type, instruction=instruction, dim=dim, on_overflow=on_overflow
        )
        return self.finish(plan, self.run(plan.inputs))

    def plan(  # noqa: PLR0913 - the request's fields, all keyword-only
        self,
        texts: Sequence[str],
        *,
        input_type: InputType,
        instruction: str | None = None,
        dim: int | None = None,
        on_overflow: OverflowPolicy | None = None,
        count: bool = False,
        what: str = "texts",
    ) -> EmbedPlan:
        """Validate, format, tokenize once and apply the overflow policy; nothing runs the model.

        ``count`` asks for token counts even when the policy does not need them (a server's
        token budget); ``what`` names the input in error messages.
        """
        items = validate_texts(texts, what=what)
        size = validate_dim(dim, self.backend.dimension)
        policy = check_overflow(on_overflow or self.on_overflow)
        formatted = self.format(items, input_type=input_type, instruction=instruction)
        inputs: list[ModelInput] = list(formatted)
        counts: list[int] | None = None
        if isinstance(self.backend, TokenizingBackend):
            ids = self.backend.token_ids(formatted) if formatted else []
            inputs, counts = list(ids), [len(row) for row in ids]
        elif formatted and (count or policy == "error"):
            counts = list(self.backend.count_tokens(formatted))
        plan = EmbedPlan(inputs, counts, size, self.backend.max_length)
        if policy == "error" and plan.over:
            raise overflow_error(plan, what)
        return plan

    def run(self, inputs: Sequence[ModelInput]) -> EmbeddingOutput:
        """Raw vectors for planned inputs (any slice of a plan's, in any grouping), row i for input i."""
        if not inputs:
            return EmbeddingOutput(np.zeros((0, self.backend.dimension), dtype=np.float32), [], 0)
        if isinstance(self.backend, TokenizingBackend) and not isinstance(inputs[0], str):
            out = self.backend.embed_ids(cast(list[list[int]], list(inputs)))
        else:
            out = self.backend.embed(cast(list[str], list(inputs)))
        if len(out.vectors) != len(inputs):
            raise BackendError(f"the backend returned {len(out.vectors)} vectors for {len(inputs)} texts")
        return out

    def finish(self, plan: EmbedPlan, out: EmbeddingOutput) -> Embeddings:
        """Slice to the plan's dimension, then L2-normalise; log truncation."""
        if out.truncated:
            log.warning(
                "%d of %d texts exceeded %d tokens and were truncated",
                out.truncated,
                len(plan.inputs),
                plan.max_length,
            )
        return Embeddings(slice_and_normalise(out.vectors, plan.dim), list(out.tokens), out.truncated)


def check_overflow(policy: object) -> OverflowPolicy:
    """``truncate`` or ``error``, else :class:`InvalidRequest`."""
    if policy not in ("truncate", "error"):
        raise InvalidRequest(f"on_overflow must be 'truncate' or 'error', not {policy!r}")
    return cast(OverflowPolicy, policy)


def overflow_error(plan: EmbedPlan, what: str) -> InvalidRequest:
    """The refusal of an over-long input under ``on_overflow="error"``: first offender and count."""
    counts, limit = plan.counts or [], plan.max_length
    first = next(i for i, n in enumerate(counts) if n > limit)
    return InvalidRequest(
        f"{what}[{first}] has {counts[first]} tokens, over the {limit}-token limit ({plan.over} too long); "
        "shorten it, raise max_length, or allow truncation (on_overflow='truncate')"
    )
