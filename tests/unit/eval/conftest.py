from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "beir"


@pytest.fixture
def tiny_en() -> Path:
    return FIXTURES / "tiny-en"


@pytest.fixture
def tiny_zh() -> Path:
    return FIXTURES / "tiny-zh"
