"""GGUF conversion of the tiny Qwen3 checkpoints with the `gguf` package (no llama.cpp needed)."""

from __future__ import annotations

import functools
import sys

import numpy as np
import pytest

from finesift.errors import InvalidRequest, MissingDependency

gguf = pytest.importorskip("gguf")
pytestmark = pytest.mark.slow


@functools.lru_cache(maxsize=4)
def _fields(path) -> tuple[dict, object]:
    """Metadata and reader of a GGUF file; parsing 151k tokens and merges is slow, so once per file."""
    reader = gguf.GGUFReader(str(path))
    out = {}
    for key, field in reader.fields.items():
        if key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"):
            out[key] = len(field.data)
        elif field.data and field.types and field.types[0] == gguf.GGUFValueType.STRING:
            out[key] = bytes(field.parts[field.data[0]]).decode()
        elif field.data:
            out[key] = field.parts[field.data[0]].tolist()[0]
    return out, reader


@pytest.fixture(scope="module")
def embedding_gguf(tiny_gguf):
    return tiny_gguf("embedding", "q8_0")  # written by convert(), shared with the llama.cpp tests


def test_embedding_file_appends_eos_and_pools_last(embedding_gguf) -> None:
    fields, reader = _fields(embedding_gguf)
    assert fields["general.architecture"] == "qwen3"
    assert fields["qwen3.pooling_type"] == int(gguf.PoolingType.LAST)
    assert fields["tokenizer.ggml.add_eos_token"] is True
    assert fields["tokenizer.ggml.add_bos_token"] is False
    assert fields["tokenizer.ggml.eos_token_id"] == 151643
    assert fields["tokenizer.ggml.pre"] == "qwen2"
    assert fields["tokenizer.ggml.tokens"] == 151669
    assert fields["qwen3.attention.key_length"] == 16
    assert len(reader.tensors) == 2 + 2 * 11


def test_q8_0_weights_dequantize_close_to_the_checkpoint(embedding_gguf, tiny_embedding_model) -> None:
    from safetensors.numpy import load_file

    original = load_file(str(next(tiny_embedding_model.glob("*.safetensors"))))["embed_tokens.weight"]
    _, reader = _fields(embedding_gguf)
    tensor = next(t for t in reader.tensors if t.name == "token_embd.weight")
    assert tensor.tensor_type == gguf.GGMLQuantizationType.Q8_0
    restored = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(original.shape)
    assert np.max(np.abs(restored - original)) < 0.01


def test_reranker_file_is_a_plain_causal_lm_written_by_the_cli(tiny_reranker_model, tmp_path) -> None:
    from typer.testing import CliRunner

    from finesift.cli.app import app

    path = tmp_path / "r.gguf"
    args = ["gguf", "convert", str(tiny_reranker_model), str(path), "--kind", "reranker", "--type", "f16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {path}")
    fields, _ = _fields(path)
    assert "qwen3.pooling_type" not in fields
    assert fields["tokenizer.ggml.add_eos_token"] is False
    assert fields["tokenizer.ggml.eos_token_id"] == 151645
    modelfile = path.with_name("r.Modelfile")
    assert f"ollama create NAME -f {modelfile}" in result.output
    _check_reranker_modelfile(modelfile.read_text(encoding="utf-8"))


def _check_reranker_modelfile(text: str) -> None:
    """What `ollama create` reads: the file beside, the model card's prompt around the body, one token."""
    from finesift.testing.reference import PREFIX, SUFFIX

    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines[0] == "FROM ./r.gguf"
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    assert template == PREFIX + "{{ .Prompt }}" + SUFFIX
    params = [line.split(maxsplit=2)[1:] for line in lines if line.startswith("PARAMETER")]
    assert ["num_predict", "1"] in params and ["temperature", "0"] in params


def test_embedding_modelfile_has_no_chat_template(tmp_path) -> None:
    from finesift.rerank.modelfile import write_modelfile

    path = write_modelfile(tmp_path / "e.q8_0.gguf", kind="embedding")
    assert path == tmp_path / "e.q8_0.Modelfile"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    assert lines[:2] == ["FROM ./e.q8_0.gguf", 'TEMPLATE "{{ .Prompt }}"']
    assert not any("num_predict" in line or "im_start" in line for line in lines)


def test_bad_requests_are_refused(tiny_embedding_model, tmp_path, monkeypatch) -> None:
    from finesift.runtime.gguf import convert

    with pytest.raises(InvalidRequest, match="q4_k_m") as info:
        convert(tiny_embedding_model, tmp_path / "x.gguf", kind="embedding", file_type="q3_k")
    for listed in ("q6_k", "q5_0", "q4_0", "q3_k_m", "q2_k", "iq4_xs"):
        assert listed in str(info.value)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MissingDependency, match=r"finesift\[llamacpp\]"):
        convert(tiny_embedding_model, tmp_path / "x.gguf", kind="embedding", file_type="q4_k_m")
    assert not list(tmp_path.glob("*.gguf"))
