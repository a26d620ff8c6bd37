"""Model resolution: a local directory, or a hub id downloaded from Hugging Face or ModelScope.

Downloads show a progress bar, use the hub's cache and resume. Only safetensors weights and
text/JSON files are fetched (no pickles); from a GGUF repository, only the one chosen ``.gguf``
file. Offline with a missing model raises one clear :class:`NotFound` saying how to get the files.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, Protocol

from finesift.errors import InvalidRequest, MissingDependency, NotFound

if TYPE_CHECKING:
    from finesift.settings import EmbeddingSettings, HubSettings, ModelSettings, RerankSettings

log = logging.getLogger(__name__)

HubName = Literal["huggingface", "modelscope"]
HUBS: tuple[str, ...] = ("huggingface", "modelscope")
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.md", "*/*.json"]


def is_local(model: str) -> bool:
    """True when ``model`` names an existing directory."""
    return Path(model).expanduser().is_dir()


def looks_like_hub_id(model: str) -> bool:
    """Hub ids are ``owner/name`` with no path separators beyond the one slash."""
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "~", "/"))


def resolve_model(
    model: str,
    *,
    hub: str = "huggingface",
    revision: str | None = None,
    cache_dir: str | None = None,
    offline: bool = False,
) -> Path:
    """Return a local directory holding ``model``'s files, downloading them if needed."""
    if not model or not isinstance(model, str):
        raise InvalidRequest(
            "a model name is required: a local directory or a hub id like Qwen/Qwen3-Embedding-0.6B"
        )
    if is_local(model):
        return Path(model).expanduser().resolve()
    if model.startswith("ollama:"):
        raise InvalidRequest(
            f"{model!r} is a GGUF that Ollama pulled: run it with --backend llamacpp (in process), "
            "or serve it with Ollama and use --backend ollama"
        )
    if not looks_like_hub_id(model):
        raise NotFound(
            f"model {model!r} is neither an existing directory nor a hub id of the form owner/name"
        )
    if hub not in HUBS:
        raise InvalidRequest(f"unknown hub {hub!r}; choose one of {', '.join(HUBS)}")
    if hub == "modelscope":
        return _from_modelscope(model, revision=revision, cache_dir=cache_dir, offline=offline)
    return _from_huggingface(model, revision=revision, cache_dir=cache_dir, offline=offline)


def resolve_for(settings: ModelSettings, hub: HubSettings) -> Path:
    """:func:`resolve_model` for a model section (model, revision) and the hub section."""
    return resolve_model(
        settings.model,
        hub=hub.source,
        revision=settings.revision,
        cache_dir=hub.cache_dir,
        offline=hub.offline,
    )


def _missing_message(model: str, hub: str, reason: str) -> str:
    cli = (
        f"huggingface-cli download {model}"
        if hub == "huggingface"
        else f"modelscope download --model {model}"
    )
    return (
        f"model {model!r} is not in the local cache and could not be downloaded from {hub} ({reason}). "
        f"On a machine with network run `{cli}` (it fills the same cache), or download the model "
        f"directory and pass its path instead of the id."
    )


def _from_huggingface(model: str, *, revision: str | None, cache_dir: str | None, offline: bool) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError as exc:
        raise MissingDependency("huggingface_hub", "transformers") from exc
    offline = offline or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    try:
        path = snapshot_download(
            model,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=ALLOW_PATTERNS,
            local_files_only=offline,
        )
    except RepositoryNotFoundError as exc:
        raise NotFound(f"model {model!r} does not exist on Hugging Face (or is private)") from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        reason = "offline mode" if offline else f"the hub could not be reached: {type(exc).__name__}"
        raise NotFound(_missing_message(model, "huggingface", reason)) from exc
    return Path(path)


def _from_modelscope(model: str, *, revision: str | None, cache_dir: str | None, offline: bool) -> Path:
    try:
        from modelscope import snapshot_download
    except ImportError as exc:
        raise MissingDependency("modelscope", "modelscope") from exc
    if offline:
        raise NotFound(_missing_message(model, "modelscope", "offline mode"))
    try:
        path = snapshot_download(
            model, revision=revision or "master", cache_dir=cache_dir, allow_patterns=ALLOW_PATTERNS
        )
    except Exception as exc:  # modelscope raises plain exceptions for network and 404s
        raise NotFound(_missing_message(model, "modelscope", f"{type(exc).__name__}: {exc}")) from exc
    return Path(path)


# GGUF repositories (e.g. Qwen/Qwen3-Embedding-0.6B-GGUF): one file per quantization; only the chosen
# one is downloaded. The type comes from ``owner/name:q8_0`` or the ``gguf_type`` setting.


@dataclass(frozen=True)
class GgufRef:
    """A GGUF hub repository and the quantization wanted from it (``None``: its only file)."""

    repo: str
    file_type: str | None


class GgufHub(Protocol):
    """What resolving a GGUF repository needs from a hub: list its files, fetch one."""

    name: str

    def list_files(self, repo: str, revision: str | None) -> list[str]: ...

    def download(self, repo: str, filename: str, revision: str | None) -> Path: ...


def parse_gguf_ref(model: str, gguf_type: str | None = None) -> GgufRef | None:
    """``owner/name-GGUF``, ``owner/name-GGUF:q8_0`` or ``owner/name:q8_0`` as a :class:`GgufRef`;
    ``None`` for anything else (a local path, a ``.gguf`` file, a plain hub id, ``fake``)."""
    if not model or model.lower().endswith(".gguf") or Path(model).expanduser().exists():
        return None
    repo, sep, tag = model.rpartition(":")
    if not sep:
        repo, tag = model, ""
    if ":" in repo or not looks_like_hub_id(repo) or (sep and not re.fullmatch(r"[A-Za-z0-9_]+", tag)):
        return None
    if not tag and not repo.lower().endswith("-gguf"):
        return None
    chosen = tag.lower() or (gguf_type.lower() if gguf_type else None)
    if tag and gguf_type and tag.lower() != gguf_type.lower():
        raise InvalidRequest(f"model {model!r} asks for {tag} but gguf_type is {gguf_type}; give one of them")
    return GgufRef(repo, chosen)


def gguf_type_of(filename: str) -> str:
    """The quantization a GGUF file name ends with: ``Qwen3-Embedding-0.6B-Q8_0.gguf`` -> ``q8_0``."""
    stem = PurePosixPath(filename).name.removesuffix(".gguf").removesuffix(".GGUF")
    return re.split(r"[-.]", stem)[-1].lower()


def pick_gguf(files: list[str], ref: GgufRef, hub: str) -> str:
    """The one ``.gguf`` file of ``files`` whose name ends with the wanted type (case-insensitive)."""
    ggufs = sorted(f for f in files if f.lower().endswith(".gguf"))
    types = ", ".join(sorted({gguf_type_of(f) for f in ggufs})) or "none"
    if ref.file_type is None:
        if len(ggufs) == 1:
            return ggufs[0]
        raise InvalidRequest(
            f"{ref.repo} on {hub} holds several GGUF files; choose a type with {ref.repo}:TYPE or "
            f"--gguf-type TYPE, one of: {types}"
        )
    matches = [f for f in ggufs if gguf_type_of(f) == ref.file_type]
    if len(matches) != 1:
        problem = "has no" if not matches else "has several"
        raise NotFound(
            f"{ref.repo} on {hub} {problem} GGUF file of type {ref.file_type!r}; available types: {types}"
        )
    return matches[0]


def resolve_gguf(ref: GgufRef, *, client: GgufHub, revision: str | None = None) -> Path:
    """The local path of the GGUF file ``ref`` names, downloading only that file."""
    filename = pick_gguf(client.list_files(ref.repo, revision), ref, client.name)
    return client.download(ref.repo, filename, revision)


def gguf_file_for(settings: ModelSettings, hub: HubSettings) -> str:
    """The file a llamacpp backend loads: a GGUF hub repository's chosen file, else ``settings.model``."""
    ref = parse_gguf_ref(settings.model, settings.gguf_type)
    if ref is None:
        return settings.model
    if hub.source not in HUBS:
        raise InvalidRequest(f"unknown hub {hub.source!r}; choose one of {', '.join(HUBS)}")
    client: GgufHub = (
        ModelScopeGguf(hub.cache_dir, offline=hub.offline)
        if hub.source == "modelscope"
        else HuggingFaceGguf(hub.cache_dir, offline=hub.offline)
    )
    return str(resolve_gguf(ref, client=client, revision=settings.revision))


def _gguf_missing(ref_repo: str, hub: str, reason: str, pattern: str) -> str:
    return (
        _missing_message(ref_repo, hub, reason)
        .replace(f"download {ref_repo}`", f"download {ref_repo} --include '{pattern}'`")
        .replace(f"--model {ref_repo}`", f"--model {ref_repo} --include '{pattern}'`")
    )


class HuggingFaceGguf:
    """Hugging Face: the repository's file list (or, offline, what the cache holds), then one file."""

    name = "huggingface"

    def __init__(self, cache_dir: str | None, *, offline: bool) -> None:
        self.cache_dir = cache_dir
        self.offline = offline or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")

    def list_files(self, repo: str, revision: str | None) -> list[str]:
        hf = _import_hf()
        if not self.offline:
            try:
                return list(hf.HfApi().list_repo_files(repo, revision=revision))
            except hf.errors.RepositoryNotFoundError as exc:
                raise NotFound(f"model {repo!r} does not exist on Hugging Face (or is private)") from exc
            except (hf.errors.HfHubHTTPError, OSError) as exc:
                log.info("cannot list %s (%s); looking in the local cache", repo, exc)
        try:
            folder = Path(
                hf.snapshot_download(
                    repo,
                    revision=revision,
                    cache_dir=self.cache_dir,
                    allow_patterns=["*.gguf"],
                    local_files_only=True,
                )
            )
        except (hf.errors.LocalEntryNotFoundError, OSError) as exc:
            reason = "offline mode" if self.offline else "the hub could not be reached"
            raise NotFound(_gguf_missing(repo, self.name, reason, "*.gguf")) from exc
        return [p.relative_to(folder).as_posix() for p in folder.rglob("*.gguf")]

    def download(self, repo: str, filename: str, revision: str | None) -> Path:
        hf = _import_hf()
        try:
            path = hf.hf_hub_download(
                repo, filename, revision=revision, cache_dir=self.cache_dir, local_files_only=self.offline
            )
        except (hf.errors.LocalEntryNotFoundError, hf.errors.HfHubHTTPError, OSError) as exc:
            reason = "offline mode" if self.offline else f"the hub could not be reached: {type(exc).__name__}"
            raise NotFound(_gguf_missing(repo, self.name, reason, filename)) from exc
        return Path(path)


class ModelScopeGguf:
    """ModelScope: the repository's file list through its API, then one file."""

    name = "modelscope"

    def __init__(self, cache_dir: str | None, *, offline: bool) -> None:
        self.cache_dir, self.offline = cache_dir, offline

    def list_files(self, repo: str, revision: str | None) -> list[str]:
        try:
            from modelscope.hub.api import HubApi
        except ImportError as exc:
            raise MissingDependency("modelscope", "modelscope") from exc
        if self.offline:
            raise NotFound(_gguf_missing(repo, self.name, "offline mode", "*.gguf"))
        try:
            entries = HubApi().get_model_files(repo, revision=revision or "master", recursive=True)
        except Exception as exc:  # modelscope raises plain exceptions for network and 404s
            raise NotFound(_gguf_missing(repo, self.name, f"{type(exc).__name__}: {exc}", "*.gguf")) from exc
        return [e["Path"] for e in entries if e.get("Type", "blob") == "blob"]

    def download(self, repo: str, filename: str, revision: str | None) -> Path:
        try:
            from modelscope import snapshot_download
        except ImportError as exc:
            raise MissingDependency("modelscope", "modelscope") from exc
        try:
            folder = snapshot_download(
                repo, revision=revision or "master", cache_dir=self.cache_dir, allow_patterns=[filename]
            )
        except Exception as exc:  # as above
            raise NotFound(_gguf_missing(repo, self.name, f"{type(exc).__name__}: {exc}", filename)) from exc
        return Path(folder) / filename


def _import_hf() -> Any:
    try:
        import huggingface_hub
        import huggingface_hub.errors
    except ImportError as exc:
        raise MissingDependency("huggingface_hub", "transformers") from exc
    return huggingface_hub


def is_fake_model(model: str) -> bool:
    """``fake`` or ``fake:…``: the deterministic, dependency-free test models."""
    return model == "fake" or model.startswith("fake:")


def choose_backend(
    settings: EmbeddingSettings | RerankSettings,
    *,
    remote: str,
    sentence_transformers: Callable[[str], bool],
) -> str:
    """Resolve ``backend="auto"`` the same way for embedders and rerankers: ``fake``/``fake:…`` (fake);
    ``.gguf`` files, GGUF hub repositories and ``ollama:NAME:TAG`` (llamacpp); a URL (``remote``, the
    HTTP client); a sentence-transformers model that ``sentence_transformers`` recognises
    (sentence-transformers); else transformers."""
    model = settings.model
    if settings.backend != "auto":
        return settings.backend
    if is_fake_model(model):
        return "fake"
    gguf = model.lower().endswith(".gguf") or model.startswith("ollama:")
    if gguf or parse_gguf_ref(model, settings.gguf_type):
        return "llamacpp"
    if settings.url:
        return remote
    return "sentence-transformers" if sentence_transformers(model) else "transformers"
