"""Shared-prefix reuse in the transformers reranker: cached scores equal uncached ones (fp32).

Every test runs on both forwards: finesift's packed one (the CPU default) and transformers'.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from finesift.rerank.prompts import DEFAULT_INSTRUCTION
from finesift.rerank.transformers import TransformersReranker
from finesift.runtime import forward
from finesift.runtime.options import EngineOptions

pytest.importorskip("torch")

QUERY = "北京是哪个国家的首都？ What is the capital of China?"
DOCS = [
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "def capital(country):\n    return CAPITALS[country]",
    " a document that starts with a space",
    "\nstarts with a newline",
    "1984 starts with digits",
    "Paris is the capital of France. " * 12,
    "短",
]


@pytest.fixture(scope="module", params=["packed", "transformers"])
def engines(
    tiny_reranker_model: Path, request: pytest.FixtureRequest
) -> tuple[TransformersReranker, TransformersReranker]:
    """(prefix-cached with a small budget so several batches run, uncached), both fp32 on CPU."""
    cached = TransformersReranker(
        tiny_reranker_model,
        device="cpu",
        dtype="float32",
        token_budget=256,
        options=EngineOptions(forward=request.param),
    )
    plain = TransformersReranker(
        tiny_reranker_model,
        device="cpu",
        dtype="float32",
        options=EngineOptions(prefix_cache=False, forward=request.param),
    )
    return cached, plain


def test_cached_equals_uncached(engines: tuple[TransformersReranker, TransformersReranker]) -> None:
    cached, plain = engines
    a = cached.score(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION).scores
    b = plain.score(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION).scores
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 1e-5
    assert len(set(a)) > 1  # the tiny model separates documents, so the comparison means something


def test_every_template_pair_splits_token_exactly(
    engines: tuple[TransformersReranker, TransformersReranker],
) -> None:
    cached, _ = engines
    rows, _ = cached.build(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION)
    prefix = cached.shared_prefix(QUERY, instruction=DEFAULT_INSTRUCTION)
    assert all(row[: len(prefix)] == prefix for row in rows)


def test_prefix_is_computed_once_per_query(
    engines: tuple[TransformersReranker, TransformersReranker], monkeypatch: pytest.MonkeyPatch
) -> None:
    cached, _ = engines
    built: list[int] = []
    if cached.packed is not None:
        real_prefix = cached.packed.prefix

        def spy_packed(ids: list[int]) -> object:
            built.append(len(ids))
            return real_prefix(ids)

        monkeypatch.setattr(cached.packed, "prefix", spy_packed)
    else:
        real = forward.SharedPrefix

        def spy(model: object, prefix: list[int], *, device: str) -> forward.SharedPrefix:
            built.append(len(prefix))
            return real(model, prefix, device=device)

        monkeypatch.setattr(forward, "SharedPrefix", spy)
    cached.score(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION)
    assert len(built) == 1


def test_pairs_that_do_not_split_fall_back_to_whole(
    engines: tuple[TransformersReranker, TransformersReranker], monkeypatch: pytest.MonkeyPatch
) -> None:
    cached, plain = engines
    expected = plain.score(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION).scores
    # A prefix no pair starts with (as when a tokenizer merges across the split) must not be used.
    monkeypatch.setattr(cached, "shared_prefix", lambda query, *, instruction: [*cached.tokens.prefix, 0, 0])
    monkeypatch.setattr(forward, "SharedPrefix", None)
    if cached.packed is not None:
        monkeypatch.setattr(cached.packed, "prefix", None)
    got = cached.score(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION).scores
    # Same fp32 computation in another batch shape: within the engine's prefix-cache bound (1e-5).
    assert max(abs(x - y) for x, y in zip(got, expected, strict=True)) <= 1e-5


def test_score_alone_equals_score_among_others(
    engines: tuple[TransformersReranker, TransformersReranker],
) -> None:
    cached, _ = engines
    together = cached.score(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION).scores
    for i, doc in enumerate(DOCS):
        alone = cached.score(QUERY, [doc], instruction=DEFAULT_INSTRUCTION).scores[0]
        assert abs(alone - together[i]) <= 1e-5


@pytest.mark.parametrize("forward_name", ["packed", "transformers"])
def test_truncated_documents_keep_the_prefix(tiny_reranker_model: Path, forward_name: str) -> None:
    cached = TransformersReranker(
        tiny_reranker_model,
        device="cpu",
        dtype="float32",
        max_length=128,
        options=EngineOptions(forward=forward_name),  # type: ignore[arg-type]
    )
    plain = TransformersReranker(
        tiny_reranker_model,
        device="cpu",
        dtype="float32",
        max_length=128,
        options=EngineOptions(prefix_cache=False, forward=forward_name),  # type: ignore[arg-type]
    )
    docs = ["很长的文档。" * 200, "another long document " * 100, "short"]
    a = cached.score("q", docs, instruction=DEFAULT_INSTRUCTION)
    b = plain.score("q", docs, instruction=DEFAULT_INSTRUCTION)
    assert a.truncated == b.truncated == 2
    assert max(abs(x - y) for x, y in zip(a.scores, b.scores, strict=True)) <= 1e-5


def test_int8_reranker_stays_close_to_fp32(
    tiny_reranker_model: Path, engines: tuple[TransformersReranker, TransformersReranker]
) -> None:
    _, plain = engines
    int8 = TransformersReranker(tiny_reranker_model, device="cpu", options=EngineOptions(quantize="int8"))
    a = int8.score(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION).scores
    b = plain.score(QUERY, DOCS, instruction=DEFAULT_INSTRUCTION).scores
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 0.05
