"""What every settings section shares: the frozen base, the choices that are also CLI flags, and
validation that turns pydantic's errors into one InvalidRequest line."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from finesift.errors import InvalidRequest

#: The choices of settings that are also CLI flags: commands annotate their flags with these.
HubSource = Literal["huggingface", "modelscope"]
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
OnOverflow = Literal["truncate", "error"]
SearchMode = Literal["dense", "bm25", "hybrid"]
# A local engine's speed options: declared once here, validated by the settings and by
# finesift.runtime.options for engines built in code.
AttentionName = Literal["auto", "sdpa", "eager", "flash_attention_2"]
QuantizeName = Literal["none", "int8"]
ForwardName = Literal["auto", "packed", "transformers"]
FuseName = Literal["auto", "on", "off"]
MAX_TOP_K = 1000

DEFAULT_EMBEDDING_MODEL = "Qwen/Qwen3-Embedding-0.6B"
DEFAULT_RERANKER_MODEL = "Qwen/Qwen3-Reranker-0.6B"
#: Model names that mean "no such model" (``finesift serve --reranker-model none``).
NO_MODEL = ("", "none")
#: Tokens per chunk of a new KB when the embedding model reads at least this many (plus its special tokens).
DEFAULT_CHUNK_SIZE = 400


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_Model = TypeVar("_Model", bound=BaseModel)


def override(section: _Model, /, **changes: Any) -> _Model:
    """``section`` with ``changes`` applied and validated (``None`` keeps a field); errors are InvalidRequest.

    Unlike ``model_copy(update=...)``, the result is validated: a per-request override cannot slip an
    out-of-range value past the declaration.
    """
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return section
    return validated(type(section), {**dict(section), **changes})


def validated(model: type[_Model], data: dict[str, Any], *, prefix: str = "") -> _Model:
    """``model`` built from ``data``; a pydantic error becomes one InvalidRequest line naming each field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid option {describe(exc, prefix=prefix)}") from exc


def describe(exc: ValidationError, *, prefix: str = "") -> str:
    """The pydantic errors on one line: ``<section.field>: <why> (got <value>); ...``."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = (prefix, *error["loc"]) if prefix else error["loc"]
        where = ".".join(str(part) for part in loc)
        got = error.get("input")
        shown = f" (got {got!r})" if error["type"] != "missing" and not isinstance(got, dict) else ""
        parts.append(f"{where or 'options'}: {error['msg'].removeprefix('Value error, ')}{shown}")
    return "; ".join(parts)
