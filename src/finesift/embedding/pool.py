"""Parallel embedding through one or more OpenAI-compatible endpoints (finesift, vLLM, TEI servers).

``--embedding-url URL[,URL...] --workers N``: texts are cut into requests of ``batch_size`` inputs,
and ``N`` of them are in flight at once (backpressure: the next request waits for a free slot),
spread over the endpoints, least busy first. Each endpoint's client retries 429/5xx/timeouts with
backoff (``max_retries``); a request that still fails moves to another endpoint before the call
fails. Results are reassembled in input order, so the output equals one endpoint's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from finesift import fakes
from finesift.embedding.base import EmbeddingOutput, QueryFormat
from finesift.embedding.openai import OpenAIEmbedder
from finesift.embedding.remote import stack_rows
from finesift.errors import BackendError, InvalidRequest
from finesift.hub import is_fake_model, resolve_for
from finesift.runtime import hf
from finesift.runtime.parallel import BoundedPool
from finesift.settings import EmbeddingSettings, HubSettings

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32


def split_urls(url: str | None) -> list[str]:
    urls = [u.strip() for u in (url or "").split(",") if u.strip()]
    if not urls:
        raise InvalidRequest("parallel embedding needs --embedding-url URL[,URL...]")
    return urls


class PooledEmbedder:
    """An :class:`~finesift.embedding.base.EmbeddingBackend` over several endpoints serving one model."""

    backend_name = "openai"

    def __init__(self, settings: EmbeddingSettings, hub: HubSettings, *, workers: int) -> None:
        self.settings, self.hub = settings, hub
        self._counter: Callable[[Sequence[str]], list[int]] | None = None
        self.urls = split_urls(settings.url)
        self.members = [OpenAIEmbedder(settings.model_copy(update={"url": u})) for u in self.urls]
        self.batch_size = settings.batch_size or DEFAULT_BATCH_SIZE
        self.pool = BoundedPool(workers)
        self._busy = [0] * len(self.members)
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.members[0].model_id

    def _answering(self) -> OpenAIEmbedder:
        """The first endpoint that tells its vector size: one that is down must not stop the run while
        another answers (the last one's error is raised when none does)."""
        for member in self.members[:-1]:
            try:
                _ = member.dimension
                return member
            except BackendError as exc:
                log.warning("%s did not answer the dimension probe (%s); trying the next", member.url, exc)
        _ = self.members[-1].dimension
        return self.members[-1]

    @property
    def dimension(self) -> int:
        return self._answering().dimension

    @property
    def max_length(self) -> int:
        return self.members[0].max_length

    @property
    def query_format(self) -> QueryFormat:
        return self.members[0].query_format

    def fingerprint(self) -> dict[str, object]:
        """The first endpoint's fingerprint; with several, ``endpoint`` lists them all."""
        fp = self._answering().fingerprint()
        if len(self.urls) > 1:
            fp["endpoint"] = ",".join(m.url for m in self.members)
        return fp

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text with the model's own tokenizer, loaded locally (chunking needs it)."""
        if self._counter is None:
            self._counter = local_token_counter(self.settings, self.hub)
        return self._counter(texts)

    def _acquire(self, avoid: set[int]) -> int:
        with self._lock:
            choices = [i for i in range(len(self.members)) if i not in avoid] or list(
                range(len(self.members))
            )
            i = min(choices, key=lambda j: self._busy[j])
            self._busy[i] += 1
            return i

    def _send(self, n: int, texts: Sequence[str]) -> EmbeddingOutput:
        tried: set[int] = set()
        while True:
            i = self._acquire(tried)
            try:
                return self.members[i].embed(texts)
            except BackendError as exc:
                tried.add(i)
                if len(tried) >= len(self.members):
                    raise BackendError(f"embedding request {n} failed on every endpoint: {exc}") from exc
            finally:
                with self._lock:
                    self._busy[i] -= 1

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        batches = [list(texts[s : s + self.batch_size]) for s in range(0, len(texts), self.batch_size)]
        outputs = self.pool.map(self._send, batches)
        if not outputs:
            return EmbeddingOutput(np.zeros((0, self.dimension), np.float32), [], 0)
        dims = {o.vectors.shape[1] for o in outputs}
        if len(dims) != 1:
            raise BackendError(f"the endpoints return different vector sizes {sorted(dims)}; serve one model")
        vectors = stack_rows([row for o in outputs for row in o.vectors])
        return EmbeddingOutput(vectors, [n for o in outputs for n in o.tokens], 0)


def local_token_counter(
    settings: EmbeddingSettings, hub: HubSettings
) -> Callable[[Sequence[str]], list[int]]:
    """Count tokens as the served model does, without loading its weights (only the tokenizer)."""
    if is_fake_model(settings.model):
        return lambda texts: fakes.count_tokens(list(texts))
    try:
        path = resolve_for(settings, hub)
        tokenizer = hf.load_tokenizer(path)
    except (BackendError, InvalidRequest) as exc:
        raise InvalidRequest(
            f"chunking needs the tokenizer of {settings.model!r} on this machine ({exc}); pass the model's "
            "hub id or local directory as --embedding-model"
        ) from exc
    return lambda texts: [len(ids) for ids in tokenizer(list(texts))["input_ids"]]


def create(settings: EmbeddingSettings, hub: HubSettings) -> Any:
    """Registry factory: ``settings.url`` is the server, ``settings.model`` the name it serves.

    Several comma-separated URLs, or ``workers`` set, give a parallel
    :class:`PooledEmbedder` over them.
    """
    if "," in (settings.url or "") or settings.workers is not None:
        workers = settings.workers or 2 * len((settings.url or "").split(","))
        return PooledEmbedder(settings, hub, workers=workers)
    return OpenAIEmbedder(settings)
