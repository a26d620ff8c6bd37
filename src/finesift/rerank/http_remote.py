"""What the Ollama and Cohere/Jina reranker clients share: settings, the HTTP client, identity.

Neither backend imports the other (an import contract keeps backends independent); both subclass this.
"""

from __future__ import annotations

from finesift.runtime.http import HttpClient, RetryPolicy
from finesift.settings import RerankSettings


class HttpRerankerBase:
    """A reranker behind an HTTP endpoint: ``model_id``, ``max_length`` and ``fingerprint`` from settings.

    Subclasses set ``backend_name`` (the pip extra and the fingerprint's default revision) and
    ``prompt`` (how the endpoint builds the model's input, recorded in the fingerprint).
    """

    backend_name = "remote"
    prompt = "remote"

    def __init__(self, settings: RerankSettings, *, url: str, client: HttpClient | None = None) -> None:
        self.settings = settings
        self.url = url
        self.client = client or HttpClient(
            api_key=settings.api_key,
            timeout_s=settings.timeout_s,
            retry=RetryPolicy(max_retries=settings.max_retries),
            extra=self.backend_name,
        )

    @property
    def model_id(self) -> str:
        return self.settings.model

    @property
    def max_length(self) -> int:
        return self.settings.max_length

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self.settings.model,
            "revision": self.settings.revision or self.backend_name,
            "prompt": self.prompt,
            "max_length": self.settings.max_length,
            "endpoint": self.url,
        }
