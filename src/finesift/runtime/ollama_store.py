"""``ollama:NAME:TAG`` model references: the GGUF blob Ollama already pulled, found in its local store.

Ollama keeps ``manifests/<registry>/<namespace>/<name>/<tag>`` (JSON, Docker-manifest shaped) and
``blobs/sha256-<hex>``; the manifest layer of media type ``application/vnd.ollama.image.model`` is
the GGUF file. ``NAME`` may carry a namespace (``dengcao/Qwen3-Reranker-0.6B``) and a registry
(``hf.co/Qwen/Qwen3-Embedding-0.6B-GGUF``); the defaults are those of ``ollama pull``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from finesift.errors import InvalidRequest, NotFound

PREFIX = "ollama:"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MODEL_LAYER = "application/vnd.ollama.image.model"
DEFAULT_STORE = Path("~/.ollama/models")


def is_reference(model: str) -> bool:
    """True for ``ollama:NAME[:TAG]``."""
    return isinstance(model, str) and model.startswith(PREFIX)


def served_name(model: str) -> str:
    """The name an Ollama server knows: ``ollama:NAME:TAG`` without the prefix; other names unchanged."""
    return model[len(PREFIX) :] if is_reference(model) else model


def keep_alive_value(text: str) -> str | float:
    """Ollama's ``keep_alive``: a duration string (``5m``), or plain seconds sent as a number (``-1``)."""
    try:
        return float(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Reference:
    """A parsed model name: ``registry/namespace/name:tag``."""

    registry: str
    namespace: str
    name: str
    tag: str

    @property
    def pull_name(self) -> str:
        """The shortest name ``ollama pull`` accepts for it."""
        head = self.name if self.namespace == DEFAULT_NAMESPACE else f"{self.namespace}/{self.name}"
        if self.registry != DEFAULT_REGISTRY:
            head = f"{self.registry}/{head}"
        return f"{head}:{self.tag}"


def parse(model: str) -> Reference:
    """``ollama:[registry/][namespace/]name[:tag]`` (the prefix optional) as a :class:`Reference`."""
    text = served_name(model).strip()
    slash = text.rfind("/")
    colon = text.rfind(":")
    name, tag = (text[:colon], text[colon + 1 :]) if colon > slash else (text, DEFAULT_TAG)
    parts = name.split("/")
    if not all(parts) or not tag or len(parts) > 3 or any(p in (".", "..") for p in (*parts, tag)):
        raise InvalidRequest(
            f"{model!r} is not an Ollama model reference; write ollama:NAME:TAG, "
            "e.g. ollama:qwen3-embedding:0.6b or ollama:dengcao/Qwen3-Reranker-0.6B:F16"
        )
    if len(parts) == 1:
        parts = [DEFAULT_REGISTRY, DEFAULT_NAMESPACE, *parts]
    elif len(parts) == 2:
        parts = [DEFAULT_REGISTRY, *parts]
    return Reference(parts[0], parts[1], parts[2], tag)


def store_root(models_dir: str | Path | None) -> Path:
    """Ollama's store: ``models_dir`` (from ``OLLAMA_MODELS`` via settings) or ``~/.ollama/models``."""
    return Path(models_dir or DEFAULT_STORE).expanduser()


def resolve(model: str, models_dir: str | Path | None = None) -> Path:
    """The GGUF blob of ``ollama:NAME:TAG`` in Ollama's store; NotFound says how to pull it."""
    ref = parse(model)
    root = store_root(models_dir)
    manifest = _find(root / "manifests", [ref.registry, ref.namespace, ref.name, ref.tag])
    if manifest is None:
        raise NotFound(
            f"Ollama model {ref.pull_name} is not pulled in {root}; run `ollama pull {ref.pull_name}` "
            "(or set OLLAMA_MODELS / FINESIFT_HUB__OLLAMA_MODELS to the store that holds it)"
        )
    digest = _model_digest(manifest)
    blob = root / "blobs" / digest.replace(":", "-")
    if not blob.is_file():
        raise NotFound(
            f"Ollama's manifest {manifest} names blob {digest}, which is missing from {root / 'blobs'}; "
            f"run `ollama pull {ref.pull_name}` again"
        )
    return blob


def _find(base: Path, parts: list[str]) -> Path | None:
    """``base/parts...`` as an existing file, matching each part exactly or else case-insensitively
    (Ollama compares names without case; the store keeps the case of the first pull)."""
    here = base
    for part in parts:
        exact = here / part
        if exact.exists():
            here = exact
            continue
        if not here.is_dir():
            return None
        matches = [p for p in here.iterdir() if p.name.lower() == part.lower()]
        if not matches:
            return None
        here = matches[0]
    return here if here.is_file() else None


def _model_digest(manifest: Path) -> str:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"Ollama manifest {manifest} is not readable JSON ({exc})") from exc
    layers = data.get("layers") if isinstance(data, dict) else None
    for layer in layers if isinstance(layers, list) else []:
        digest = layer.get("digest") if isinstance(layer, dict) else None
        if layer.get("mediaType") == MODEL_LAYER and isinstance(digest, str) and digest.startswith("sha256:"):
            return digest
    raise InvalidRequest(
        f"Ollama manifest {manifest} has no {MODEL_LAYER} layer: it holds no GGUF model (an adapter?)"
    )
