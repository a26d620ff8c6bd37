"""``ollama:NAME:TAG`` references resolve through Ollama's manifest store to the GGUF blob."""

from __future__ import annotations

import json

import pytest

from finesift.embedding.registry import choose_backend as choose_embedding
from finesift.errors import InvalidRequest, NotFound
from finesift.hub import resolve_model
from finesift.rerank.registry import choose_backend as choose_rerank
from finesift.runtime import llamacpp, ollama_store
from finesift.settings import EmbeddingSettings, HubSettings, RerankSettings
from finesift.testing.ollama import pull_into_store

RERANKER = "ollama:dengcao/Qwen3-Reranker-0.6B:F16"


@pytest.mark.parametrize(
    ("model", "parts", "pull"),
    [
        (
            "ollama:qwen3-embedding:0.6b",
            ("registry.ollama.ai", "library", "qwen3-embedding", "0.6b"),
            "qwen3-embedding:0.6b",
        ),
        (
            "ollama:qwen3-embedding",
            ("registry.ollama.ai", "library", "qwen3-embedding", "latest"),
            "qwen3-embedding:latest",
        ),
        (
            RERANKER,
            ("registry.ollama.ai", "dengcao", "Qwen3-Reranker-0.6B", "F16"),
            "dengcao/Qwen3-Reranker-0.6B:F16",
        ),
        (
            "ollama:hf.co/Qwen/Qwen3-Embedding-0.6B-GGUF:Q8_0",
            ("hf.co", "Qwen", "Qwen3-Embedding-0.6B-GGUF", "Q8_0"),
            "hf.co/Qwen/Qwen3-Embedding-0.6B-GGUF:Q8_0",
        ),
        (
            "ollama:localhost:5000/team/model",
            ("localhost:5000", "team", "model", "latest"),
            "localhost:5000/team/model:latest",
        ),
    ],
)
def test_references_parse_with_ollamas_defaults(model: str, parts: tuple[str, ...], pull: str) -> None:
    ref = ollama_store.parse(model)
    assert (ref.registry, ref.namespace, ref.name, ref.tag) == parts
    assert ref.pull_name == pull


@pytest.mark.parametrize("model", ["ollama:", "ollama:a//b", "ollama:x:", "ollama:a/b/c/d", "ollama:../x"])
def test_malformed_references_are_refused(model: str) -> None:
    with pytest.raises(InvalidRequest, match="ollama:NAME:TAG"):
        ollama_store.parse(model)


@pytest.fixture(scope="module")
def tiny_gguf(tiny_embedding_model, tmp_path_factory):
    pytest.importorskip("gguf")
    from finesift.runtime.gguf import convert

    out = tmp_path_factory.mktemp("gguf") / "e.f32.gguf"
    return convert(tiny_embedding_model, out, kind="embedding", file_type="f32")


def test_a_pulled_model_resolves_to_its_gguf_blob(tiny_gguf, tmp_path) -> None:
    blob = pull_into_store(tmp_path, RERANKER, tiny_gguf)
    assert ollama_store.resolve(RERANKER, tmp_path) == blob
    assert blob.name.startswith("sha256-") and blob.suffix == ""
    assert blob.read_bytes() == tiny_gguf.read_bytes()
    # the llama.cpp backends accept the blob (GGUF magic, no .gguf suffix) and the reference
    assert llamacpp.gguf_path(str(blob)) == blob
    assert llamacpp.locate(RERANKER, str(tmp_path)) == str(blob)
    assert llamacpp.locate("/models/x.gguf") == "/models/x.gguf"
    # Ollama compares names without case
    assert ollama_store.resolve("ollama:DengCao/qwen3-reranker-0.6b:f16", tmp_path) == blob


def test_the_default_store_is_ollama_models_then_home(tiny_gguf, tmp_path, monkeypatch) -> None:
    pull_into_store(tmp_path / "store", "ollama:qwen3-embedding:0.6b", tiny_gguf)
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "store"))
    assert HubSettings().ollama_models == str(tmp_path / "store")
    monkeypatch.delenv("OLLAMA_MODELS")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert HubSettings().ollama_models is None
    assert ollama_store.store_root(None) == tmp_path / ".ollama" / "models"


def test_a_model_not_pulled_says_how_to_pull_it(tiny_gguf, tmp_path) -> None:
    pull_into_store(tmp_path, "ollama:qwen3-embedding:0.6b", tiny_gguf)
    with pytest.raises(
        NotFound, match=r"not pulled in .*; run `ollama pull dengcao/Qwen3-Reranker-0.6B:F16`"
    ):
        ollama_store.resolve(RERANKER, tmp_path)
    with pytest.raises(NotFound, match=r"ollama pull qwen3-embedding:4b"):
        ollama_store.resolve("ollama:qwen3-embedding:4b", tmp_path)


def test_a_missing_blob_or_a_manifest_without_a_model_layer_is_explained(tiny_gguf, tmp_path) -> None:
    blob = pull_into_store(tmp_path, RERANKER, tiny_gguf)
    blob.unlink()
    with pytest.raises(NotFound, match=r"missing .*run `ollama pull dengcao/Qwen3-Reranker-0.6B:F16` again"):
        ollama_store.resolve(RERANKER, tmp_path)
    manifest = tmp_path / "manifests/registry.ollama.ai/dengcao/Qwen3-Reranker-0.6B/F16"
    data = json.loads(manifest.read_text())
    data["layers"] = data["layers"][1:]
    manifest.write_text(json.dumps(data))
    with pytest.raises(InvalidRequest, match=r"no application/vnd\.ollama\.image\.model layer"):
        ollama_store.resolve(RERANKER, tmp_path)


def test_references_choose_llamacpp_and_the_hub_points_there() -> None:
    assert choose_embedding(EmbeddingSettings(model="ollama:qwen3-embedding:0.6b")) == "llamacpp"
    assert choose_rerank(RerankSettings(model=RERANKER)) == "llamacpp"
    with pytest.raises(InvalidRequest, match="--backend llamacpp"):
        resolve_model(RERANKER)
    assert ollama_store.served_name(RERANKER) == "dengcao/Qwen3-Reranker-0.6B:F16"
    assert ollama_store.keep_alive_value("-1") == -1.0 and ollama_store.keep_alive_value("5m") == "5m"


def test_a_file_that_is_not_gguf_is_refused(tmp_path) -> None:
    blob = tmp_path / "sha256-00"
    blob.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(InvalidRequest, match=r"needs a \.gguf file"):
        llamacpp.gguf_path(str(blob))


def test_llamacpp_embeds_and_reranks_with_models_ollama_pulled(
    tiny_gguf, tiny_embedder, tiny_reranker, tiny_reranker_model, tmp_path, monkeypatch
) -> None:
    pytest.importorskip("llama_cpp")
    import numpy as np

    from finesift import load_embedder, load_reranker
    from finesift.doctor.probes import PROBES
    from finesift.runtime.gguf import convert

    reranker_gguf = convert(tiny_reranker_model, tmp_path / "r.f32.gguf", kind="reranker", file_type="f32")
    pull_into_store(tmp_path / "store", "ollama:qwen3-embedding:0.6b", tiny_gguf)
    pull_into_store(tmp_path / "store", RERANKER, reranker_gguf)
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "store"))
    embedder = load_embedder("ollama:qwen3-embedding:0.6b", max_length=2048)
    assert type(embedder.backend).__name__ == "LlamaCppEmbedder"
    texts = list(PROBES.documents)
    cosines = np.sum(embedder.embed_documents(texts) * tiny_embedder.embed_documents(texts), axis=1)
    assert float(np.min(cosines)) > 0.99
    reranker = load_reranker(RERANKER, max_length=2048)
    query, docs = PROBES.rerank[0]
    got = reranker.score(query.text, list(docs))
    assert got == pytest.approx(tiny_reranker.score(query.text, list(docs)), abs=0.05)
    # the same through the CLI: `finesift rerank --model ollama:NAME:TAG` picks llama.cpp by itself
    from typer.testing import CliRunner

    from finesift.cli.app import app

    args = ["--home", str(tmp_path / "home"), "rerank", "-q", query.text, "--model", RERANKER]
    result = CliRunner().invoke(app, [*args, "--max-length", "2048"], input="\n".join(docs[:3]))
    assert result.exit_code == 0, result.output
    cli_scores = [json.loads(line)["score"] for line in result.stdout.splitlines()]
    assert cli_scores == pytest.approx(got[:3], abs=1e-6)
    missing = CliRunner().invoke(app, [*args[:-1], "ollama:dengcao/Qwen3-Reranker-0.6B:Q4_K_M"], input="x\n")
    assert missing.exit_code != 0
    assert "ollama pull dengcao/Qwen3-Reranker-0.6B:Q4_K_M" in missing.output
