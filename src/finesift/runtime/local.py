"""The shell every local backend shares: its id and window, and the transformers loader.

Embedding and reranker backends that load a model on this machine (transformers, vLLM,
sentence-transformers, llama.cpp) inherit :class:`LocalModel` for the properties of their Protocol;
the two transformers backends also share :class:`HFModel`'s loading steps and forward dispatch.
Remote backends and fakes need no inheritance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finesift.runtime import forward, hf
from finesift.runtime.batching import default_token_budget
from finesift.runtime.options import EngineOptions


class LocalModel:
    """``model_id`` and ``max_length``, read from what the loader set."""

    _model_id: str
    _max_length: int

    @property
    def model_id(self) -> str:
        """The model's name or path, as given by the user."""
        return self._model_id

    @property
    def max_length(self) -> int:
        """Tokens per text (embedding) or per pair (rerank) after which the backend truncates."""
        return self._max_length


class HFModel(LocalModel):
    """Loading a Qwen3 checkpoint through transformers, in three steps the backends call in order.

    :meth:`_open` reads config, window, placement and tokenizer; :meth:`_weights` loads a
    ``transformers`` auto class; :meth:`_compile` quantizes and sets up the packed forward.
    """

    def _open(
        self,
        path: str | Path,
        *,
        model_id: str | None,
        device: str,
        dtype: str,
        max_length: int,
        options: EngineOptions | None,
    ) -> None:
        self._torch, self._transformers = hf.import_torch_stack()
        self.options = options or EngineOptions()
        self.path = Path(path)
        self.config = hf.read_config(self.path)
        self._max_length = hf.check_max_length(max_length, self.config)
        self._model_id = model_id or str(path)
        self.device, self.torch_dtype, self.attention = hf.placement(device, dtype, self.options)
        self.tokenizer = hf.load_tokenizer(self.path)
        self._revision = hf.revision_of(self.path)

    def _weights(self, auto_class: str) -> Any:
        """The checkpoint loaded with ``transformers.<auto_class>`` on the chosen device and dtype."""
        return hf.load_weights(
            getattr(self._transformers, auto_class),
            self.path,
            device=self.device,
            dtype=self.torch_dtype,
            attn_implementation=self.attention,
        )

    def _compile(self, model: Any, token_budget: int | None) -> None:
        """Quantize if asked, then the token budget and the packed forward (when chosen)."""
        self.model = hf.maybe_quantize(model, self.options.quantize)
        self.token_budget = token_budget or default_token_budget(self.device)
        self.packed = hf.packed_forward(self.model, self.options, self.device, chunk_tokens=self.token_budget)

    def warm_up(self) -> None:
        """Pay now the one-time cost a large first forward would pay (the packed forward's compile)."""
        if self.packed is not None:
            self.packed.warm_up()

    def _last_hidden(self, rows: list[list[int]]) -> Any:
        """(n, hidden) last-position states of whole rows: packed, flash-attention, or padded."""
        if self.packed is not None:
            return self.packed.last_hidden(rows)
        if self.attention == "flash_attention_2":
            return forward.last_hidden_packed(self.model, rows, device=self.device)
        return forward.last_hidden_padded(
            self.model, rows, pad_id=self.tokenizer.pad_token_id, device=self.device
        )
