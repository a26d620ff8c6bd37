"""The parts of the LangChain and LlamaIndex classes that are the same in both: their fields and setup.

Each framework class inherits one of these first and its framework's base class second; only the
translation into the framework's own types stays in ``langchain.py`` / ``llamaindex.py``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr

from finesift.integrations.sources import Connection, RerankSource, rerank_source
from finesift.rerank.base import Reranker


class RerankFields(BaseModel):
    """``reranker`` (a :class:`~finesift.rerank.base.Reranker` or a server URL), ``top_n`` (``None``:
    keep all), ``instruction``, and the server's ``api_key`` and ``timeout_s``; builds the source."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reranker: Reranker | str
    top_n: int | None = 3
    instruction: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 60.0
    _source: RerankSource = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        connection = Connection(api_key=self.api_key, timeout_s=self.timeout_s)
        self._source = rerank_source(self.reranker, instruction=self.instruction, connection=connection)
