"""GGUF hub repositories: the quantization selector, one file downloaded, the offline messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from finesift.embedding.registry import choose_backend as embedding_backend
from finesift.errors import InvalidRequest, NotFound
from finesift.hub import GgufRef, HuggingFaceGguf, gguf_file_for, parse_gguf_ref, resolve_gguf
from finesift.rerank.registry import choose_backend as reranker_backend
from finesift.settings import EmbeddingSettings, HubSettings, RerankSettings

REPO = "Qwen/Qwen3-Embedding-0.6B-GGUF"
FILES = [
    ".gitattributes",
    "README.md",
    "Qwen3-Embedding-0.6B-Q8_0.gguf",
    "Qwen3-Embedding-0.6B-f16.gguf",
    "Qwen3-Embedding-0.6B-Q4_K_M.gguf",
    "Qwen3-Embedding-0.6B-Q4_K_S.gguf",
]


class FakeHub:
    """A hub that lists ``files`` and records which ones were downloaded."""

    name = "huggingface"

    def __init__(self, root: Path, files: list[str]) -> None:
        self.root, self.files, self.downloaded = root, files, []

    def list_files(self, repo: str, revision: str | None) -> list[str]:
        return list(self.files)

    def download(self, repo: str, filename: str, revision: str | None) -> Path:
        self.downloaded.append(filename)
        path = self.root / filename
        path.write_bytes(b"GGUF")
        return path


@pytest.mark.parametrize(
    ("model", "gguf_type", "want"),
    [
        (f"{REPO}:q8_0", None, GgufRef(REPO, "q8_0")),
        (f"{REPO}:Q4_K_M", None, GgufRef(REPO, "q4_k_m")),
        (REPO, "Q8_0", GgufRef(REPO, "q8_0")),
        (REPO, None, GgufRef(REPO, None)),
        ("someone/custom-model:q5_k_m", None, GgufRef("someone/custom-model", "q5_k_m")),
        (f"{REPO}:q8_0", "Q8_0", GgufRef(REPO, "q8_0")),
        ("Qwen/Qwen3-Embedding-0.6B", "q8_0", None),  # not a GGUF repository: the checkpoint
        ("/models/e.q8_0.gguf", None, None),
        ("ollama:dengcao/Qwen3-Embedding-0.6B:F16", None, None),
        ("fake", None, None),
        ("fake:32", None, None),
    ],
)
def test_references(model: str, gguf_type: str | None, want: GgufRef | None) -> None:
    assert parse_gguf_ref(model, gguf_type) == want


def test_conflicting_types_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="q8_0 but gguf_type is q4_k_m"):
        parse_gguf_ref(f"{REPO}:q8_0", "q4_k_m")


def test_only_the_chosen_file_is_downloaded(tmp_path: Path) -> None:
    hub = FakeHub(tmp_path, FILES)
    path = resolve_gguf(GgufRef(REPO, "q4_k_m"), client=hub)
    assert hub.downloaded == ["Qwen3-Embedding-0.6B-Q4_K_M.gguf"]  # not Q4_K_S, not the others
    assert path == tmp_path / "Qwen3-Embedding-0.6B-Q4_K_M.gguf"


def test_a_missing_type_lists_the_available_ones(tmp_path: Path) -> None:
    hub = FakeHub(tmp_path, FILES)
    with pytest.raises(NotFound) as info:
        resolve_gguf(GgufRef(REPO, "q3_k_m"), client=hub)
    assert "no GGUF file of type 'q3_k_m'" in str(info.value)
    assert "available types: f16, q4_k_m, q4_k_s, q8_0" in str(info.value)
    assert hub.downloaded == []


def test_no_type_takes_a_single_file_and_refuses_a_choice(tmp_path: Path) -> None:
    single = FakeHub(tmp_path, ["README.md", "model-Q8_0.gguf"])
    assert resolve_gguf(GgufRef("a/model-GGUF", None), client=single).name == "model-Q8_0.gguf"
    with pytest.raises(InvalidRequest, match=r"Qwen3-Embedding-0\.6B-GGUF:TYPE or --gguf-type TYPE"):
        resolve_gguf(GgufRef(REPO, None), client=FakeHub(tmp_path, FILES))


def test_gguf_repositories_choose_the_llamacpp_backend() -> None:
    assert embedding_backend(EmbeddingSettings(model=f"{REPO}:q8_0")) == "llamacpp"
    assert embedding_backend(EmbeddingSettings(model=REPO, gguf_type="q8_0")) == "llamacpp"
    assert reranker_backend(RerankSettings(model="Qwen/Qwen3-Reranker-0.6B-GGUF:f16")) == "llamacpp"
    assert embedding_backend(EmbeddingSettings(model="Qwen/Qwen3-Embedding-0.6B")) == "transformers"


def _fill_cache(cache: Path, repo: str, files: list[str]) -> Path:
    """The Hugging Face cache layout (refs/main -> snapshots/<commit>/...), as a download leaves it."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in files:
        (snapshot / name).write_bytes(b"GGUF")
    return snapshot


def test_offline_uses_the_huggingface_cache(tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    snapshot = _fill_cache(
        tmp_path, REPO, ["Qwen3-Embedding-0.6B-Q8_0.gguf", "Qwen3-Embedding-0.6B-f16.gguf"]
    )
    settings = EmbeddingSettings(model=f"{REPO}:Q8_0")
    got = gguf_file_for(settings, HubSettings(cache_dir=str(tmp_path), offline=True))
    assert Path(got) == snapshot / "Qwen3-Embedding-0.6B-Q8_0.gguf"
    with pytest.raises(NotFound, match=r"available types: f16, q8_0"):
        gguf_file_for(
            settings.model_copy(update={"model": f"{REPO}:q4_k_m"}),
            HubSettings(cache_dir=str(tmp_path), offline=True),
        )


def test_offline_missing_repository_says_how_to_download_one_type(tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    hub = HuggingFaceGguf(str(tmp_path), offline=True)
    with pytest.raises(NotFound) as info:
        hub.list_files(REPO, None)
    message = str(info.value)
    assert f"huggingface-cli download {REPO} --include '*.gguf'" in message
    assert "offline mode" in message and "pass its path" in message


def test_hf_offline_env_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFound, match="offline mode"):
        gguf_file_for(EmbeddingSettings(model=f"{REPO}:q8_0"), HubSettings(cache_dir=str(tmp_path)))


def test_modelscope_offline_says_how_to_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    api = types.ModuleType("modelscope.hub.api")
    api.HubApi = object  # type: ignore[attr-defined]
    for name in ("modelscope", "modelscope.hub"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "modelscope.hub.api", api)
    with pytest.raises(NotFound, match=rf"modelscope download --model {REPO} --include '\*\.gguf'"):
        gguf_file_for(EmbeddingSettings(model=f"{REPO}:q8_0"), HubSettings(source="modelscope", offline=True))


def test_huggingface_lists_then_downloads_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf = pytest.importorskip("huggingface_hub")
    calls: list[tuple[str, str]] = []

    def list_repo_files(self, repo_id, revision=None):
        calls.append(("list", repo_id))
        return FILES

    def hf_hub_download(repo_id, filename, revision=None, cache_dir=None, local_files_only=False):
        calls.append(("download", filename))
        assert cache_dir == str(tmp_path) and not local_files_only
        return str(tmp_path / filename)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf.HfApi, "list_repo_files", list_repo_files)
    monkeypatch.setattr(hf, "hf_hub_download", hf_hub_download)
    got = gguf_file_for(EmbeddingSettings(model=f"{REPO}:f16"), HubSettings(cache_dir=str(tmp_path)))
    assert got == str(tmp_path / "Qwen3-Embedding-0.6B-f16.gguf")
    assert calls == [("list", REPO), ("download", "Qwen3-Embedding-0.6B-f16.gguf")]
