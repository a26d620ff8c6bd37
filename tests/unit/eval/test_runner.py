"""The runner with the fake models: every mode, the cache, dims, the rerank protocol, --compare specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from finesift.embedding.fake import FakeEmbedder
from finesift.errors import InvalidRequest
from finesift.eval.cache import EmbeddingCache
from finesift.eval.compare import expand, parse_spec, summary, table
from finesift.eval.config import EvalConfig
from finesift.eval.datasets import load_beir
from finesift.eval.runner import Evaluator
from finesift.settings import EmbeddingSettings, RerankSettings

FAKE = EmbeddingSettings(model="fake:64")
FAKE_RERANK = RerankSettings(model="fake")


def config(mode: str, **kw: object) -> EvalConfig:
    return EvalConfig(mode=mode, embedding=FAKE, reranker=FAKE_RERANK, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid", "rerank"])
def test_every_mode_scores_the_fixture(mode: str, tiny_en: Path, tmp_path: Path) -> None:
    result = Evaluator(cache=EmbeddingCache(tmp_path)).run(load_beir(tiny_en), config(mode))
    assert result.queries == 7 and result.docs == 12 and result.dropped_queries == 1
    assert set(result.metrics) == {"ndcg@10", "recall@100", "mrr@10", "map@100"}
    assert all(0.0 <= v <= 1.0 for v in result.metrics.values())
    assert result.metrics["recall@100"] == 1.0  # 12 docs: everything is in the top 100
    out = result.to_json()
    assert out["mode"] == mode and out["queries"] == 7 and out["docs"] == 12 and out["seconds"] >= 0


def test_bm25_finds_the_lexical_answers(tiny_en: Path, tiny_zh: Path) -> None:
    assert Evaluator().run(load_beir(tiny_en), config("bm25")).metrics["mrr@10"] == 1.0
    assert Evaluator().run(load_beir(tiny_zh, "dev"), config("bm25")).metrics["mrr@10"] == 1.0


def test_corpus_is_encoded_once_across_modes_and_dims(tiny_en: Path, tmp_path: Path) -> None:
    evaluator = Evaluator(cache=EmbeddingCache(tmp_path))
    data = load_beir(tiny_en)
    first = evaluator.run(data, config("dense"))
    backend = evaluator.embedder(FAKE).backend
    assert isinstance(backend, FakeEmbedder)
    encoded = backend.texts_embedded
    for cfg in (config("hybrid"), config("rerank"), config("dense", dim=32)):
        assert evaluator.run(data, cfg).corpus_cached
    assert backend.texts_embedded == encoded
    assert not first.corpus_cached
    # a fresh process (new evaluator) reads the disk cache
    again = Evaluator(cache=EmbeddingCache(tmp_path))
    assert again.run(data, config("dense")).corpus_cached
    assert again.embedder(FAKE).backend.texts_embedded == 0  # type: ignore[attr-defined]


def test_changing_the_data_misses_the_cache(tiny_en: Path, tmp_path: Path) -> None:
    evaluator = Evaluator(cache=EmbeddingCache(tmp_path))
    data = load_beir(tiny_en)
    evaluator.run(data, config("dense"))
    data.doc_texts[0] += " changed"
    data._hash = None
    assert not evaluator.run(data, config("dense")).corpus_cached


def test_dim_slices_then_normalises(tiny_en: Path) -> None:
    evaluator = Evaluator()
    data = load_beir(tiny_en)
    full = evaluator.run(data, config("dense"))
    small = evaluator.run(data, config("dense", dim=32))
    assert small.index_bytes == full.index_bytes // 2
    with pytest.raises(InvalidRequest, match="out of range"):
        evaluator.run(data, config("dense", dim=16))


def test_rerank_only_reorders_the_top_candidates(tiny_en: Path) -> None:
    evaluator = Evaluator()
    data = load_beir(tiny_en)
    dense = evaluator.run(data, config("dense"))
    reranked = evaluator.run(data, config("rerank", rerank_top=100))
    assert reranked.metrics["recall@100"] == dense.metrics["recall@100"]
    assert reranked.metrics["ndcg@10"] >= dense.metrics["ndcg@10"]
    assert evaluator.reranker(FAKE_RERANK).backend.calls == 7  # type: ignore[attr-defined]  # one call per query


def test_rerank_top_one_keeps_the_dense_order(tiny_en: Path) -> None:
    evaluator = Evaluator()
    data = load_beir(tiny_en)
    dense = evaluator.run(data, config("dense"))
    assert evaluator.run(data, config("rerank", rerank_top=1)).metrics == dense.metrics


def test_unknown_mode_and_bad_rerank_top() -> None:
    with pytest.raises(InvalidRequest, match="choose one of dense, bm25, hybrid, rerank"):
        config("sparse")
    with pytest.raises(InvalidRequest, match="rerank_top"):
        config("rerank", rerank_top=0)


def test_compare_specs_expand() -> None:
    assert parse_spec("dim=256|512, mode=dense") == [
        {"dim": "256", "mode": "dense"},
        {"dim": "512", "mode": "dense"},
    ]
    configs = expand(config("dense"), ["dim=32|full", "mode=rerank,reranker=fake,rerank-top=10"])
    assert [c.dim for c in configs] == [32, None, None]
    assert (
        configs[2].mode == "rerank" and configs[2].rerank_top == 10 and configs[2].label.startswith("mode=")
    )
    assert expand(config("dense"), ["dtype=float32"])[0].embedding.dtype == "float32"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dim", "key=value"),
        ("colour=red", "unknown key 'colour'"),
        ("dim=big", "integer"),
        ("dtype=int4", "invalid value"),
    ],
)
def test_bad_compare_specs(spec: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        expand(config("dense"), [spec])


def test_tables(tiny_en: Path) -> None:
    evaluator = Evaluator()
    data = load_beir(tiny_en)
    results = evaluator.run_all(data, [config("dense"), *expand(config("dense"), ["mode=bm25|hybrid"])])
    text = table(results)
    assert text.splitlines()[0].split()[:3] == ["configuration", "nDCG@10", "R@100"]
    assert "mode=bm25" in text and "mode=hybrid" in text and len(text.splitlines()) == 5
    assert "nDCG@10" in summary(results[0]) and "7 queries" in summary(results[0])
