"""Invariants of the Qwen3 embedding path: pooling, padding, EOS, MRL, batching, instructions."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from numerics import sum_tolerance

pytest.importorskip("torch")

from finesift import load_embedder
from finesift.embedding.embedder import slice_and_normalise
from finesift.embedding.instructions import DEFAULT_TASK, format_query
from finesift.errors import BackendError, InvalidRequest

TEXTS = ["short", "a somewhat longer text about databases and indexes", "中文文本，关于检索。", "x = 1"]


def test_query_text_is_exact(tiny_embedder) -> None:
    assert format_query("q?", "Do X") == "Instruct: Do X\nQuery:q?"
    assert tiny_embedder.format(["q?"], input_type="query") == [f"Instruct: {DEFAULT_TASK}\nQuery:q?"]
    assert tiny_embedder.format(["doc"], input_type="document") == ["doc"]


def test_every_row_ends_with_eos_and_is_left_padded(tiny_embedder) -> None:
    backend = tiny_embedder.backend
    ids, counts, truncated = backend.tokenize(TEXTS)
    assert truncated == 0
    assert all(row[-1] == 151643 for row in ids)
    assert counts == [len(r) for r in ids]


def test_alone_equals_in_padded_batch(tiny_embedder) -> None:
    batch = tiny_embedder.embed_documents(TEXTS)
    for i, text in enumerate(TEXTS):
        alone = tiny_embedder.embed_documents([text])[0]
        np.testing.assert_allclose(alone, batch[i], atol=1e-5)


def test_input_order_does_not_matter(tiny_embedder) -> None:
    forward = tiny_embedder.embed_documents(TEXTS)
    backward = tiny_embedder.embed_documents(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(forward, backward, atol=1e-5)


def test_mrl_slices_then_normalises(tiny_embedder) -> None:
    raw = tiny_embedder.backend.embed(TEXTS).vectors
    for dim in (32, 40, 64):
        got = tiny_embedder.embed_documents(TEXTS, dim=dim)
        assert got.shape == (len(TEXTS), dim) and got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=sum_tolerance(dim))
        expected = raw[:, :dim] / np.linalg.norm(raw[:, :dim], axis=1, keepdims=True)
        np.testing.assert_allclose(got, expected, atol=sum_tolerance(dim))
    full = tiny_embedder.embed_documents(TEXTS)
    # normalise-before-slice would give a prefix of the full vector: it must not.
    assert not np.allclose(tiny_embedder.embed_documents(TEXTS, dim=32), full[:, :32], atol=1e-3)


@pytest.mark.parametrize("dim", [0, 31, 65, -1, True, 3.5, "64"])
def test_dim_out_of_range_is_refused(tiny_embedder, dim) -> None:
    with pytest.raises(InvalidRequest, match="dim"):
        tiny_embedder.embed_documents(["x"], dim=dim)


def test_empty_list_gives_empty_array(tiny_embedder) -> None:
    assert tiny_embedder.embed_documents([]).shape == (0, 64)
    assert tiny_embedder.embed_queries([], dim=32).shape == (0, 32)


@pytest.mark.parametrize("bad", [[""], ["  \n"], [None], [1], "a bare string", [b"bytes"]])
def test_bad_texts_are_refused(tiny_embedder, bad) -> None:
    with pytest.raises(InvalidRequest):
        tiny_embedder.embed_documents(bad)


def test_unknown_instruction_name_is_refused(tiny_embedder) -> None:
    with pytest.raises(InvalidRequest, match="code_search"):
        tiny_embedder.embed_queries(["q"], instruction="codesearch")


def test_truncation_is_counted_and_logged(tiny_embedding_model: Path, caplog) -> None:
    emb = load_embedder(str(tiny_embedding_model), dtype="float32", device="cpu", max_length=16)
    long = "word " * 100
    with caplog.at_level(logging.WARNING):
        out = emb.encode([long, "short"], input_type="document")
    assert out.truncated == 1 and out.tokens[0] == 16
    assert "1 of 2 texts exceeded 16 tokens" in caplog.text


def test_truncation_policy_error(tiny_embedding_model: Path) -> None:
    emb = load_embedder(
        str(tiny_embedding_model), dtype="float32", device="cpu", max_length=16, on_overflow="error"
    )
    with pytest.raises(InvalidRequest, match="16-token limit"):
        emb.embed_documents(["word " * 100])
    assert emb.embed_documents(["fits"]).shape == (1, 64)


def test_max_length_beyond_model_limit_is_refused(tiny_embedding_model: Path) -> None:
    with pytest.raises(InvalidRequest, match="max_length"):
        load_embedder(str(tiny_embedding_model), device="cpu", max_length=10**6)


def test_tokenizer_without_eos_postprocessor_is_refused(tiny_embedding_model: Path, copy_model) -> None:
    broken = copy_model(tiny_embedding_model)
    data = json.loads((broken / "tokenizer.json").read_text(encoding="utf-8"))
    data["post_processor"] = data["post_processor"]["processors"][0]  # keep ByteLevel, drop the EOS template
    (broken / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BackendError, match="<\\|endoftext\\|>"):
        load_embedder(str(broken), device="cpu")


def test_pickle_checkpoints_are_refused(tiny_embedding_model: Path, copy_model) -> None:
    broken = copy_model(tiny_embedding_model)
    (broken / "model.safetensors").unlink()
    with pytest.raises(BackendError, match="safetensors"):
        load_embedder(str(broken), device="cpu")


def test_slice_and_normalise_rejects_zero_vectors() -> None:
    with pytest.raises(BackendError):
        slice_and_normalise(np.zeros((1, 64), dtype=np.float32), 32)


def test_fingerprint_names_what_determines_vectors(tiny_embedder) -> None:
    fp = tiny_embedder.fingerprint()
    assert {"model", "revision", "dimension", "pooling", "max_length", "tokenizer", "instruction"} <= set(fp)
    assert fp["pooling"] == "last_token"
    json.dumps(fp)
