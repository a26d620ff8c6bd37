"""Every option, declared once. CLI flags, ``FINESIFT_*`` environment variables and code derive from here.

Nested sections read from ``FINESIFT_<SECTION>__<FIELD>``, e.g. ``FINESIFT_EMBEDDING__MODEL`` or
``FINESIFT_HUB__SOURCE=modelscope``. Library classes never read the environment themselves.

The sections are declared by subject in this package's modules (``models``, ``kb``, ``answer``,
``server``, ``jobs``; ``base`` holds the shared base and validation); import every name from here.
"""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from finesift.settings.answer import AnswerSettings, LLMSettings, SynthSettings
from finesift.settings.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_RERANKER_MODEL,
    MAX_TOP_K,
    NO_MODEL,
    Dtype,
    HubSource,
    OnOverflow,
    SearchMode,
    describe,
    override,
    validated,
)
from finesift.settings.jobs import EvalSettings, RaySettings, ThreadSettings
from finesift.settings.kb import KBSettings, SearchSettings
from finesift.settings.models import EmbeddingSettings, HubSettings, ModelSettings, RerankSettings
from finesift.settings.server import ServerSettings

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_RERANKER_MODEL",
    "MAX_TOP_K",
    "NO_MODEL",
    "AnswerSettings",
    "Dtype",
    "EmbeddingSettings",
    "EvalSettings",
    "HubSettings",
    "HubSource",
    "KBSettings",
    "LLMSettings",
    "ModelSettings",
    "OnOverflow",
    "RaySettings",
    "RerankSettings",
    "SearchMode",
    "SearchSettings",
    "ServerSettings",
    "Settings",
    "SynthSettings",
    "ThreadSettings",
    "default_cache_dir",
    "default_home",
    "describe",
    "override",
    "validated",
]


def default_home() -> Path:
    return Path(user_data_dir("finesift", appauthor=False))


def default_cache_dir() -> Path:
    return Path(user_cache_dir("finesift", appauthor=False))


class Settings(BaseSettings):
    """All of finesift's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="FINESIFT_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    home: Path = Field(default_factory=default_home, description="where knowledge bases live")
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="rebuildable caches, safe to delete (jieba's dictionary copy that queries read)",
    )
    #: A factory, so that OLLAMA_MODELS is read when settings are built, not when finesift is imported.
    hub: HubSettings = Field(default_factory=HubSettings)
    embedding: EmbeddingSettings = EmbeddingSettings()
    reranker: RerankSettings = RerankSettings()
    kb: KBSettings = KBSettings()
    search: SearchSettings = SearchSettings()
    server: ServerSettings = ServerSettings()
    eval: EvalSettings = EvalSettings()
    llm: LLMSettings = LLMSettings()
    answer: AnswerSettings = AnswerSettings()
    ray: RaySettings = RaySettings()
    synth: SynthSettings = SynthSettings()
    threads: ThreadSettings = ThreadSettings()
