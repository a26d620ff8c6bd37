"""A KB's recorded instruction reaches both models: the query embedding and the reranker's prompt."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from finesift.embedding.base import EmbeddingOutput
from finesift.embedding.embedder import Embedder
from finesift.embedding.fake import FakeEmbedder
from finesift.kb.knowledge_base import KnowledgeBase
from finesift.kb.spec import KBSpec
from finesift.rerank.base import Reranker, RerankOutput
from finesift.rerank.fake import FakeReranker
from finesift.retrieval.pipeline import SearchOptions
from finesift.settings import Settings

# Written out, not read from the project: the test must fail if the name maps to another text.
CODE_TASK = "Given a natural language query, retrieve code snippets that answer the query"
WEB_TASK = "Given a web search query, retrieve relevant passages that answer the query"
QUERY = "get the user name"


class RecordingEmbedder(FakeEmbedder):
    """The fake embedder, keeping every text it is given (queries arrive formatted)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> EmbeddingOutput:
        self.texts.extend(texts)
        return super().embed(texts)


class RecordingReranker(FakeReranker):
    """The fake reranker, keeping the instruction of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.instructions: list[str] = []

    def score(self, query: str, documents: Sequence[str], *, instruction: str) -> RerankOutput:
        self.instructions.append(instruction)
        return super().score(query, documents, instruction=instruction)


def _fill(kb: KnowledgeBase, corpus: Path) -> None:
    kb.add([corpus])


def test_shared_models_get_the_kbs_instruction(kb_settings: Settings, corpus: Path) -> None:
    """Models whose defaults are web search (a server's) still embed and rerank for code search."""
    embedder_backend, reranker_backend = RecordingEmbedder(), RecordingReranker()
    with KnowledgeBase.create(
        "code", settings=kb_settings, embedder=Embedder(embedder_backend, instruction="code_search")
    ) as kb:
        _fill(kb, corpus)
    shared = Embedder(embedder_backend, instruction="code_search")
    reranker = Reranker(reranker_backend)  # its default task is web search
    assert reranker.default_instruction == WEB_TASK
    with KnowledgeBase.open("code", settings=kb_settings, embedder=shared, reranker=reranker) as kb:
        embedder_backend.texts.clear()
        hits = kb.search(QUERY, SearchOptions(top_k=3))
    assert hits and reranker_backend.instructions == [CODE_TASK]
    assert embedder_backend.texts == [f"Instruct: {CODE_TASK}\nQuery:{QUERY}"]


def test_models_loaded_from_the_manifest_get_the_kbs_instruction(
    kb_settings: Settings, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's way: the KB builds its models from what it recorded, the reranker from global settings."""
    seen: dict[str, list[str]] = {"texts": [], "instructions": []}
    embed, score = FakeEmbedder.embed, FakeReranker.score

    def recording_embed(self: FakeEmbedder, texts: Sequence[str]) -> EmbeddingOutput:
        seen["texts"].extend(texts)
        return embed(self, texts)

    def recording_score(self: FakeReranker, query: str, docs: Sequence[str], *, instruction: str) -> Any:
        seen["instructions"].append(instruction)
        return score(self, query, docs, instruction=instruction)

    monkeypatch.setattr(FakeEmbedder, "embed", recording_embed)
    monkeypatch.setattr(FakeReranker, "score", recording_score)
    spec = KBSpec.from_settings(kb_settings, instruction="code_search")
    with KnowledgeBase.create("code", settings=kb_settings, spec=spec) as kb:
        _fill(kb, corpus)
    assert kb.manifest.instruction == CODE_TASK
    with KnowledgeBase.open("code", settings=kb_settings) as kb:
        seen["texts"].clear()
        hits = kb.search(QUERY, SearchOptions(top_k=3, mode="dense"))
    assert hits and seen["instructions"] == [CODE_TASK]
    assert seen["texts"] == [f"Instruct: {CODE_TASK}\nQuery:{QUERY}"]


def test_no_rerank_means_no_reranker_call(kb_settings: Settings, corpus: Path) -> None:
    backend = RecordingReranker()
    spec = KBSpec.from_settings(kb_settings, instruction="code_search")
    with KnowledgeBase.create("code", settings=kb_settings, spec=spec, reranker=Reranker(backend)) as kb:
        _fill(kb, corpus)
        assert kb.search(QUERY, SearchOptions(rerank=False)) and backend.instructions == []
        kb.search(QUERY)
    assert backend.instructions == [CODE_TASK]
