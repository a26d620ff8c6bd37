"""Qwen3-Reranker served by Ollama: the model card's prompt through ``/api/generate``, P(yes) from logprobs.

Ollama has no rerank endpoint, but since 0.12.11 ``/api/generate`` returns the log-probabilities of
the generated token and of its ``top_logprobs`` alternatives. Each pair is sent as the exact prompt
text of :func:`finesift.rerank.prompts.prompt_text` with ``raw: true`` (no Modelfile template), one
token at temperature 0, and scored ``exp(ly) / (exp(ly) + exp(ln))`` over the ``yes``/``no`` pair,
the model card's softmax over those two logits. When one of the two is not among the returned top
tokens its log-probability is bounded by ``FLOOR_LOGPROB`` (-10, as the model card's vLLM recipe
does); such pairs are counted (``floored_pairs``) and logged.

Ollama exposes no tokenizer, so a document that overflows ``max_length`` tokens is seen in the
answer (Ollama cut the prompt to fill its context): it is then shortened by characters and sent
again, so that only the document is ever truncated, never the instruction, query or suffix.
Requests run ``max_concurrent`` at a time; pairs of one query share their prompt prefix, which
Ollama's runner keeps in its cache between requests (``keep_alive`` keeps the model loaded).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finesift.errors import BackendError, InvalidRequest, NotFound
from finesift.rerank.base import RerankOutput
from finesift.rerank.http_remote import HttpRerankerBase
from finesift.rerank.prompts import NO, YES, prompt_text
from finesift.runtime.http import HttpClient, endpoint_url
from finesift.runtime.ollama_store import keep_alive_value, served_name
from finesift.runtime.parallel import BoundedPool
from finesift.settings import HubSettings, RerankSettings

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:11434"
#: The first Ollama release whose /api/generate returns logprobs and top_logprobs.
MIN_VERSION = (0, 12, 11)
#: Ollama's upper bound on top_logprobs.
TOP_LOGPROBS = 20
#: The log-probability given to "yes" or "no" when it is missing from the top list (vLLM recipe).
FLOOR_LOGPROB = -10.0
#: An over-long document keeps this share of its characters per retry, at most MAX_CUTS times.
KEEP_SHARE = 0.75
MAX_CUTS = 12
NEEDS = "the ollama reranker needs Ollama >= {} (logprobs on /api/generate); upgrade Ollama"


def needs_message() -> str:
    return NEEDS.format(".".join(map(str, MIN_VERSION)))


def parse_version(text: Any) -> tuple[int, int, int] | None:
    """``"0.12.11"`` (or ``"v0.13.0-rc1"``) as a tuple; None for dev builds (``0.0.0``) and junk."""
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", str(text or ""))
    if match is None:
        return None
    version = (int(match[1]), int(match[2]), int(match[3]))
    return None if version == (0, 0, 0) else version


@dataclass(frozen=True)
class PairScore:
    """One pair's score, prompt tokens, and whether its document was cut or its score floored."""

    score: float
    tokens: int
    truncated: bool
    floored: bool


def yes_no_score(body: Any, where: str) -> tuple[float, bool]:
    """P(yes) over the yes/no pair from one /api/generate answer, and whether a floor was used."""
    entries = body.get("logprobs") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise BackendError(f"{where} answered without logprobs: {needs_message()}")
    first = entries[0]
    candidates = [first, *(first.get("top_logprobs") or [])]
    found: dict[str, float] = {}
    for item in candidates:
        token = item.get("token") if isinstance(item, dict) else None
        value = item.get("logprob") if isinstance(item, dict) else None
        if token in (YES, NO) and isinstance(value, int | float) and not isinstance(value, bool):
            found.setdefault(token, float(value))
    if any(math.isnan(v) for v in found.values()):
        raise BackendError(f"{where} returned NaN logprobs; check the model file and its dtype")
    ly, ln = found.get(YES, FLOOR_LOGPROB), found.get(NO, FLOOR_LOGPROB)
    diff = ly - ln
    score = 1.0 / (1.0 + math.exp(-diff)) if diff > -700 else 0.0
    return score, len(found) < 2


class OllamaReranker(HttpRerankerBase):
    """P(yes) per document from a Qwen3-Reranker GGUF served by Ollama."""

    backend_name = "ollama"
    prompt = "qwen3-transformers-card"

    def __init__(self, settings: RerankSettings, *, client: HttpClient | None = None) -> None:
        url = settings.url or DEFAULT_URL
        super().__init__(settings, url=endpoint_url(url, "/api/generate"), client=client)
        self.served = served_name(settings.model)
        self.version_url = endpoint_url(url, "/api/version")
        self.show_url = endpoint_url(url, "/api/show")
        self.pool = BoundedPool(settings.max_concurrent)
        self._lock = threading.Lock()
        #: Pairs scored, and those whose "yes" or "no" was missing from the top list (floored).
        self.scored_pairs = 0
        self.floored_pairs = 0
        self.server_version: str | None = None

    def check_server(self) -> str:
        """Refuse an Ollama older than :data:`MIN_VERSION` or one that does not serve the model."""
        body = self.client.get_json(self.version_url)
        text = body.get("version") if isinstance(body, dict) else None
        version = parse_version(text)
        if version is not None and version < MIN_VERSION:
            raise BackendError(f"{self.version_url} reports Ollama {text}: {needs_message()}")
        try:
            self.client.post_json(self.show_url, {"model": self.served})
        except NotFound as exc:
            raise NotFound(
                f"Ollama at {self.show_url} has no model {self.served!r}; run `ollama pull {self.served}`"
            ) from exc
        self.server_version = str(text)
        return self.server_version

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        pairs = self.pool.map(lambda _, doc: self._pair(query, doc, instruction), list(documents))
        floored = sum(p.floored for p in pairs)
        with self._lock:
            self.scored_pairs += len(pairs)
            self.floored_pairs += floored
        if floored:
            log.warning(
                "%d of %d pairs: Ollama's top %d logprobs lacked 'yes' or 'no'; bounded by logprob %g",
                floored,
                len(pairs),
                TOP_LOGPROBS,
                FLOOR_LOGPROB,
            )
        return RerankOutput(
            [p.score for p in pairs], [p.tokens for p in pairs], sum(p.truncated for p in pairs)
        )

    def _pair(self, query: str, document: str, instruction: str) -> PairScore:
        doc = document
        for cut in range(MAX_CUTS + 1):
            body = self._generate(prompt_text(instruction=instruction, query=query, document=doc))
            tokens = body.get("prompt_eval_count") if isinstance(body, dict) else None
            if body is not None and not (isinstance(tokens, int) and tokens >= self.max_length):
                score, floored = yes_no_score(body, self.url)
                return PairScore(score, tokens if isinstance(tokens, int) else 0, cut > 0, floored)
            doc = doc[: int(len(doc) * KEEP_SHARE)]
            if not doc:
                break
        raise InvalidRequest(
            f"the query and instruction alone fill the {self.max_length}-token context; "
            "shorten the query or raise max_length"
        )

    def _generate(self, prompt: str) -> dict[str, Any] | None:
        """One /api/generate answer, or None when Ollama refused the prompt as longer than its context."""
        payload: dict[str, Any] = {
            "model": self.served,
            "prompt": prompt,
            "raw": True,
            "stream": False,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
            "options": {"num_predict": 1, "temperature": 0, "num_ctx": self.max_length},
        }
        if self.settings.keep_alive is not None:
            payload["keep_alive"] = keep_alive_value(self.settings.keep_alive)
        try:
            body = self.client.post_json(self.url, payload)
        except InvalidRequest as exc:
            if "context" in str(exc).lower():
                return None
            raise
        if not isinstance(body, dict):
            raise BackendError(f"{self.url} answered with {type(body).__name__}, not a JSON object")
        return body


def create(settings: RerankSettings, hub: HubSettings) -> OllamaReranker:
    """Registry factory: ``settings.url`` defaults to a local Ollama on port 11434; the server is
    checked for a version with logprobs and for the model."""
    backend = OllamaReranker(settings)
    backend.check_server()
    return backend
