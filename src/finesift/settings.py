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


class ServerSettings(_Section):
    """The HTTP server (``finesift serve``): binding, security, limits, batching."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_key: SecretStr | None = Field(
        default=None, description="Bearer token required on every route but /health"
    )
    allowed_hosts: tuple[str, ...] = Field(
        default=(), description="extra Host names accepted when bound to loopback"
    )
    cors_origins: tuple[str, ...] = Field(
        default=(), description="origins allowed by CORS; empty means CORS off"
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="request body limit (413 beyond)"
    )
    max_inputs: int = Field(default=2048, ge=1, description="texts per embeddings request")
    max_request_tokens: int = Field(default=300_000, ge=1, description="tokens per embeddings request")
    max_documents: int = Field(default=1000, ge=1, description="documents per rerank request")
    batch_tokens: int = Field(
        default=16384, ge=16, description="tokens gathered across requests per model call"
    )
    max_batch_items: int = Field(default=512, ge=1, description="texts or documents per model call")
    queue_size: int = Field(default=64, ge=1, description="requests admitted per model before 429")
    request_timeout: float = Field(default=60.0, gt=0, description="seconds a request may wait and run")
    retry_after: int = Field(default=1, ge=1, description="seconds suggested in Retry-After on 429/503")
    shutdown_timeout: float = Field(
        default=30.0, ge=0, description="seconds to finish in-flight work on shutdown"
    )


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
    server: ServerSettings = ServerSettings()
