"""Model resolution: a local directory, or a hub id downloaded from Hugging Face or ModelScope.

Downloads show a progress bar, use the hub's cache and resume. Only safetensors weights and
text/JSON files are fetched (no pickles). Offline with a missing model raises one clear
:class:`NotFound` saying how to get the files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from finesift.errors import InvalidRequest, MissingDependency, NotFound

if TYPE_CHECKING:
    from finesift.settings import HubSettings, ModelSettings

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
