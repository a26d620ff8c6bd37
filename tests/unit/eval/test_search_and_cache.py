"""Exact search against a brute-force sort, and the embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from finesift.errors import InvalidRequest
from finesift.eval import search
from finesift.eval.cache import EmbeddingCache, cache_key
from finesift.eval.search import exact_search
from numerics import sum_tolerance


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("k", [1, 5, 50, 80])
def test_exact_search_equals_full_sort(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "QUERY_BLOCK", 7)  # several blocks
    queries, docs = _unit(20, 16, 1), _unit(50, 16, 2)
    idx, scores = exact_search(queries, docs, k)
    full = queries @ docs.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, : min(k, 50)]
    assert idx.shape == (20, min(k, 50))
    # Blocked and whole GEMMs add the 16 products in different orders: scores agree within the
    # float32 bound for unit vectors, and the ranking is the full sort's up to pairs closer than that.
    tol = sum_tolerance(16)
    chosen = np.take_along_axis(full, idx, axis=1)
    np.testing.assert_allclose(chosen, np.take_along_axis(full, expected, axis=1), rtol=0, atol=tol)
    np.testing.assert_allclose(scores, chosen, rtol=0, atol=tol)
    apart = np.abs(np.diff(np.take_along_axis(full, expected, axis=1), axis=1)) > 2 * tol
    clear = np.concatenate([apart[:, :1], apart[:, 1:] & apart[:, :-1]], axis=1)
    assert (idx[:, :-1][clear] == expected[:, :-1][clear]).all()  # no near-tie: the same document


def test_ties_go_to_the_lower_index() -> None:
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    idx, _ = exact_search(np.array([[1.0, 0.0]], dtype=np.float32), docs, 2)
    assert idx.tolist() == [[0, 2]]


def test_shape_mismatch_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequest, match="do not match"):
        exact_search(_unit(2, 8, 0), _unit(3, 16, 0), 1)


def test_cache_roundtrip_and_misses(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c")
    key = cache_key({"model": "m", "dtype": "float32"}, "hash", "document")
    vectors = _unit(4, 8, 3)
    assert cache.load(key, 4) is None
    cache.save(key, vectors, {"seconds": 1.5})
    hit = cache.load(key, 4)
    assert hit is not None and hit.meta["seconds"] == 1.5
    np.testing.assert_array_equal(hit.vectors, vectors)
    assert cache.load(key, 5) is None  # different row count
    assert not list((tmp_path / "c").glob("*.tmp"))


def test_cache_key_depends_on_every_part() -> None:
    base = cache_key({"model": "m"}, "h", "document")
    assert base == cache_key({"model": "m"}, "h", "document")
    assert base != cache_key({"model": "m2"}, "h", "document")
    assert base != cache_key({"model": "m"}, "h2", "document")
    assert base != cache_key({"model": "m"}, "h", "query")


def test_corrupt_entry_is_ignored(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.save("k", _unit(2, 4, 0), {})
    (tmp_path / "k.npy").write_bytes(b"garbage")
    assert cache.load("k", 2) is None


def test_disabled_cache_stores_nothing(tmp_path: Path) -> None:
    cache = EmbeddingCache(None)
    cache.save("k", _unit(2, 4, 0), {})
    assert cache.load("k", 2) is None
