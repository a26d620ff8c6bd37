"""The names clients send as ``model`` (vLLM's ``--served-model-name`` convention) and the query alias.

A model is served under ``served_name`` when set, else under its hub id, or its directory's name when
it was loaded from a local path: never an absolute path. The embedding model is also served as
``<name>:query``: texts sent to that name are embedded as queries (with the Qwen3 instruction), for
OpenAI-style clients (LangChain's and LlamaIndex's ``OpenAIEmbeddings``) that cannot send ``input_type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath

from finesift.errors import InvalidRequest, NotFound
from finesift.settings import ModelSettings

#: Appended to the embedding model's served name: the alias whose inputs are embedded as queries.
QUERY_SUFFIX = ":query"


def served_name(section: ModelSettings, model_id: str) -> str:
    """The name a model is served under: ``served_name``; else the backend's id unless it is a path
    (fakes, remote models); else the hub id (``owner/name``) it was loaded by, or its directory's name."""
    if section.served_name:
        return section.served_name
    if not _is_local(model_id):
        return model_id
    reference = section.model.strip()
    if "/" in reference and not _is_local(reference):
        return reference
    return PurePath(model_id.rstrip("/\\")).name or model_id


def check_served_name(section: ModelSettings) -> None:
    """Refuse an embedding ``served_name`` ending in :data:`QUERY_SUFFIX`: clients could not tell the
    name from the query alias of another one."""
    name = section.served_name
    if name and name.endswith(QUERY_SUFFIX):
        raise InvalidRequest(
            f"embedding.served_name {name!r} ends in {QUERY_SUFFIX!r}, which names the query alias; "
            f"serve it as {name.removesuffix(QUERY_SUFFIX)!r} (clients then send {name!r} for queries)"
        )


def _is_local(reference: str) -> bool:
    """Whether ``reference`` is a filesystem path rather than a hub id (``owner/name``) or a name."""
    if reference.startswith(("/", "./", "../", "~", "\\")) or (len(reference) > 1 and reference[1] == ":"):
        return True
    return "/" in reference and Path(reference).is_dir()


@dataclass(frozen=True)
class ServedNames:
    """What this server answers to, per role (None: the role is not served)."""

    embedding: str | None = None
    reranker: str | None = None

    def listed(self) -> list[str]:
        """Every name a client may send, as ``/v1/models`` lists them."""
        names = []
        if self.embedding is not None:
            names += [self.embedding, self.embedding + QUERY_SUFFIX]
        if self.reranker is not None:
            names.append(self.reranker)
        return names


def resolve_model(
    requested: str | None, *, served: str, model_id: str, role: str, names: ServedNames
) -> bool:
    """Whether ``requested`` names the served model of ``role`` in query mode; NotFound if it names none.

    Accepted: no name, the served name, and (for older clients) the model's full id or path or its last
    path component; each with :data:`QUERY_SUFFIX` on the embedding model.
    """
    if requested is None:
        return False
    if requested == served:  # a served name may itself end in the suffix (a model's own tag)
        return False
    query = role == "embedding" and requested.endswith(QUERY_SUFFIX)
    base = requested.removesuffix(QUERY_SUFFIX) if query else requested
    if base in (served, model_id, PurePath(model_id).name):
        return query
    listed = ", ".join(repr(n) for n in names.listed())
    raise NotFound(f"model {requested!r} is not served here; this server serves {listed}")
