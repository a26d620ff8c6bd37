"""Terms written for an engine's analyzer come back exactly (finesift.store.lexical_text)."""

from __future__ import annotations

import re

from finesift.lexical import tokenize
from finesift.store.lexical_text import joined_terms

TEXTS = [
    "getUserName retry_policy __init__ HTTPServer v2.5 数据库索引优化",
    "アイ・ウエ カタカナ・テスト ﾃｽﾄ Straße İstanbul ǅemal",
    "1,000 naïve café",
]


def whitespace(text: str) -> list[str]:
    return text.split()


def lite_standard(text: str) -> list[str]:
    """Milvus Lite 3.2.2's ``standard`` tokenizer."""
    return re.findall(r"\w+", text.lower(), re.UNICODE)


def test_every_term_survives_both_analyzers_and_stays_distinct() -> None:
    for text in TEXTS:
        terms = tokenize(text)
        joined = joined_terms(terms)
        assert len(whitespace(joined)) == len(lite_standard(joined)) == len(terms)
        assert whitespace(joined) == lite_standard(joined)
        decoded = {t: e for t, e in zip(terms, whitespace(joined), strict=True)}
        assert len(set(decoded.values())) == len(decoded), "two terms must not share one form"


def test_finesift_terms_never_start_with_an_underscore() -> None:
    """The escape prefix `_` cannot collide with a real term."""
    assert not [t for text in [*TEXTS, "__x _y z_ ___"] for t in tokenize(text) if t.startswith("_")]
