"""Every option, declared once. CLI flags, ``FINESIFT_*`` environment variables and code derive from here.

Nested sections read from ``FINESIFT_<SECTION>__<FIELD>``, e.g. ``FINESIFT_EMBEDDING__MODEL`` or
``FINESIFT_HUB__SOURCE=modelscope``. Library classes never read the environment themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "Qwen/Qwen3-Embedding-0.6B"
DEFAULT_RERANKER_MODEL = "Qwen/Qwen3-Reranker-0.6B"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HubSettings(_Section):
    """Where hub ids are downloaded from."""

    source: Literal["huggingface", "modelscope"] = "huggingface"
    cache_dir: str | None = None
    offline: bool = False


class ModelSettings(_Section):
    """What every model role shares: which model, which backend, where it runs."""

    model: str
    backend: str = "auto"
    revision: str | None = None
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_length: int = Field(8192, ge=16)
    token_budget: int | None = Field(None, ge=16, description="padded tokens per forward pass")
    #: auto: flash-attention 2 with padding-free packing on CUDA when flash-attn is installed, else SDPA.
    attention: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    #: int8: dynamic int8 linear layers (CPU only; fidelity measured in docs/speed.md).
    quantize: Literal["none", "int8"] = "none"
    instruction: str | None = None
    url: str | None = Field(None, description="endpoint of a remote backend")
    api_key: SecretStr | None = None


class EmbeddingSettings(ModelSettings):
    """The embedding model."""

    model: str = DEFAULT_EMBEDDING_MODEL
    on_overflow: Literal["truncate", "error"] = "truncate"


class RerankSettings(ModelSettings):
    """The reranking model."""

    model: str = DEFAULT_RERANKER_MODEL
    #: Compute the prompt prefix (system, instruction, query) shared by a query's documents once.
    prefix_cache: bool = True


def default_home() -> Path:
    return Path(user_data_dir("finesift", appauthor=False))


class Settings(BaseSettings):
    """All of finesift's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="FINESIFT_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    home: Path = Field(default_factory=default_home, description="where knowledge bases live")
    hub: HubSettings = HubSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    reranker: RerankSettings = RerankSettings()
