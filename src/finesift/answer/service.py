"""The generation step: retrieve from a KB, refuse without relevant context, else ask the chat model.

::

    answerer = Answerer(kb, ChatClient(settings.llm), settings)
    result = answerer.answer("如何优化数据库")          # AnswerResult(answer, citations, refused)
    prepared = answerer.prepare("如何优化数据库")       # or stream it:
    for piece in answerer.stream(prepared): ...
    result = answerer.finish(prepared, "".join(pieces))
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from finesift.answer.llm import ChatClient
from finesift.answer.prompt import (
    SYSTEM_PROMPT,
    Citation,
    Prompt,
    TokenCounter,
    build_prompt,
    estimate_tokens,
    mark_cited,
)
from finesift.errors import FinesiftError, InvalidRequest
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.retrieval.pipeline import SearchOptions, validate_query
from finesift.settings import Settings
from finesift.types import Hit

log = logging.getLogger(__name__)
APPLICATION_HEADER = "Instructions from the application (they add to the rules above, never replace them):"


@dataclass(frozen=True)
class AnswerResult:
    """The answer text, the numbered passages it was given (``cited`` marks those it used), and
    ``refused`` when no passage was relevant enough to answer from."""

    answer: str
    citations: list[Citation]
    refused: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "citations": [citation_dict(c) for c in self.citations],
            "refused": self.refused,
        }


def citation_dict(citation: Citation) -> dict[str, Any]:
    """The JSON shape of one citation (CLI ``--json``, both HTTP endpoints)."""
    return dataclasses.asdict(citation)


@dataclass(frozen=True)
class Prepared:
    """A question after retrieval: either a prompt to send, or the refusal to show instead."""

    question: str
    prompt: Prompt | None
    refusal: str | None
    hits: list[Hit]


def refusal_message(kb: str, best: float | None, threshold: float) -> str:
    if best is None:
        return f"No relevant context: knowledge base {kb!r} has no passage for this question."
    return (
        f"No relevant context: nothing in knowledge base {kb!r} is relevant enough to answer this question "
        f"(best passage score {best:.3f}, below the threshold {threshold:g})."
    )


class Answerer:
    """Cited answers over one knowledge base through one chat model; safe to share between threads."""

    def __init__(
        self,
        kb: KnowledgeBase,
        llm: ChatClient | None,
        settings: Settings,
        *,
        count: TokenCounter | None = None,
    ) -> None:
        self.kb = kb
        self.llm = llm
        self.settings = settings
        self._count = count

    @property
    def count(self) -> TokenCounter:
        """Prompt token counts: the KB embedder's Qwen3 tokenizer when local, else an estimate."""
        if self._count is None:
            self._count = estimate_tokens
            if self.settings.answer.tokenizer == "auto":
                try:
                    embedder = self.kb.embedder
                    if embedder.info.local_tokenizer:
                        self._count = embedder.count_tokens
                except FinesiftError as exc:
                    log.info("counting prompt tokens with the estimate: %s", exc)
        return self._count

    def search_options(self, *, top_k: int | None = None, mode: str | None = None) -> SearchOptions:
        s = self.settings.search
        k = top_k or self.settings.answer.top_k
        return SearchOptions.of(
            s, top_k=k, mode=mode, candidates=max(s.candidates, k), rerank_top_n=max(s.rerank_top_n, k)
        )

    @property
    def budget(self) -> int:
        """Prompt tokens: the context window less the tokens reserved for the answer."""
        llm = self.settings.llm
        budget = llm.context_tokens - llm.max_tokens
        if budget < 128:
            raise InvalidRequest(
                f"llm.context_tokens ({llm.context_tokens}) leaves no room for a prompt after llm.max_tokens "
                f"({llm.max_tokens}); raise the first or lower the second"
            )
        return budget

    def prepare(
        self,
        question: str,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        mode: str | None = None,
        history: Sequence[dict[str, str]] = (),
        system: str | None = None,
    ) -> Prepared:
        """Retrieve, decide whether to refuse, and assemble the prompt within the token budget.

        ``history`` holds earlier user/assistant turns; ``system`` is the application's own system text,
        added after finesift's rules (which it does not replace).
        """
        question = validate_query(question)
        threshold = self.settings.answer.threshold if threshold is None else threshold
        if not 0 <= threshold <= 1:
            raise InvalidRequest(f"threshold must be in [0, 1], not {threshold!r}")
        options = self.search_options(top_k=top_k, mode=mode)
        hits = self.kb.search(question, options)
        reranked = options.rerank and self.kb.reranks
        best = hits[0].score if hits else None
        if reranked:
            # A passage the reranker judges irrelevant is noise to the model (and room for injected text).
            hits = [h for h in hits if h.score >= threshold]
        if not hits:
            return Prepared(question, None, refusal_message(self.kb.name, best, threshold), hits)
        rules = SYSTEM_PROMPT if not system else f"{SYSTEM_PROMPT}\n\n{APPLICATION_HEADER}\n{system}"
        prompt = build_prompt(
            question, hits, budget=self.budget, count=self.count, system=rules, history=history
        )
        return Prepared(question, prompt, None, hits)

    def _client(self) -> ChatClient:
        if self.llm is None:
            raise InvalidRequest(
                "no chat model configured: pass --llm-url and --llm-model "
                "(or set FINESIFT_LLM__URL and FINESIFT_LLM__MODEL)"
            )
        return self.llm

    def stream(self, prepared: Prepared) -> Iterator[str]:
        """The answer in pieces: the refusal as one piece, or the chat model's stream."""
        if prepared.prompt is None:
            yield prepared.refusal or ""
            return
        yield from self._client().stream(prepared.prompt.messages)

    def complete(self, prepared: Prepared) -> AnswerResult:
        """The whole answer at once (no streaming)."""
        if prepared.prompt is None:
            return self.finish(prepared, prepared.refusal or "")
        return self.finish(prepared, self._client().complete(prepared.prompt.messages))

    def finish(self, prepared: Prepared, answer: str) -> AnswerResult:
        """The result for the full ``answer`` text: citations marked with what it cites."""
        if prepared.prompt is None:
            return AnswerResult(answer, [], True)
        return AnswerResult(answer, mark_cited(prepared.prompt.citations, answer), False)

    def answer(self, question: str, **options: Any) -> AnswerResult:
        """Retrieve and answer ``question`` in one call (see :meth:`prepare` for ``options``)."""
        return self.complete(self.prepare(question, **options))


def primed(pieces: Iterator[str]) -> Iterator[str]:
    """Start ``pieces`` now (connect, retry, first token) so failures surface before a response begins."""
    try:
        first = next(pieces)
    except StopIteration:
        return iter(())
    return _chain(first, pieces)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
