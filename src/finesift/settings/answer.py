"""The sections of cited answers: the chat model (``llm``), ``answer`` and ``synth``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from finesift.settings.base import _Section


class LLMSettings(_Section):
    """The chat model that writes cited answers: any OpenAI-compatible ``/v1/chat/completions``."""

    url: str | None = Field(default=None, description="base URL, e.g. http://127.0.0.1:11434/v1 (Ollama)")
    model: str | None = Field(default=None, description="the model name the endpoint serves")
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=120.0, gt=0, description="seconds to connect, or between streamed bytes")
    max_retries: int = Field(
        default=2, ge=0, le=20, description="retries on 429/5xx/timeouts before the answer"
    )
    context_tokens: int = Field(default=8192, ge=256, description="the model's context window, in tokens")
    max_tokens: int = Field(default=1024, ge=16, description="tokens reserved for the answer")
    temperature: float = Field(
        default=0.1, ge=0, le=2, description="sampling temperature of answers (synth: synth.temperature)"
    )


class SynthSettings(_Section):
    """Training queries written by the chat model (``finesift synth``); the endpoint is ``llm``'s."""

    temperature: float = Field(
        default=0.7, ge=0, le=2, description="sampling temperature of the chat model writing queries"
    )


class AnswerSettings(_Section):
    """Cited answers (``finesift ask``, ``/v1/kbs/{kb}/ask``, ``/v1/chat/completions``)."""

    threshold: float = Field(
        default=0.2, ge=0, le=1, description="refuse when the best reranker score is below this"
    )
    top_k: int = Field(default=8, ge=1, le=100, description="passages retrieved for the prompt")
    tokenizer: Literal["auto", "estimate"] = Field(
        default="auto", description="auto: the KB embedder's tokenizer when local, else an estimate"
    )
    max_concurrent: int = Field(
        default=16, ge=1, description="server: answers in progress at once; the next gets 429"
    )
