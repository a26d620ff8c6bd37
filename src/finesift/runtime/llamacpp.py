"""Loading GGUF files through llama-cpp-python, and a tokenizer adapter for the shared prompt code.

Imported only when a ``llamacpp`` backend is chosen; a missing package becomes
:class:`MissingDependency` naming the ``llamacpp`` extra.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from finesift.errors import BackendError, InvalidRequest, MissingDependency
from finesift.runtime import ollama_store

GGUF_MAGIC = b"GGUF"
#: OpenMP's wait policy for ggml's worker threads when the user set none. ggml meets its threads at
#: a barrier after every graph node; spinning there burns the cores that tokenizing, the server and
#: other processes need (docs/performance/gguf.md has the measurement).
WAIT_POLICY = "passive"
#: The variables that decide the policy: a user who set one keeps it.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def import_llama_cpp() -> Any:
    try:
        with _wait_policy():
            import llama_cpp
    except ImportError as exc:
        raise MissingDependency("llama-cpp-python", "llamacpp", "it compiles llama.cpp from source") from exc
    return llama_cpp


@contextmanager
def _wait_policy() -> Iterator[None]:
    """``OMP_WAIT_POLICY=passive`` while llama.cpp's libraries load, unless the user chose a policy.

    libgomp reads the variable once, when it is loaded: by ``import llama_cpp``, or earlier by torch
    (the same ``libgomp.so.1``), whose choice then holds. The environment is restored afterwards, so
    child processes see the user's.
    """
    if "llama_cpp" in sys.modules:
        yield
        return
    user = [f"{name}={os.environ[name]}" for name in WAIT_VARIABLES if name in os.environ]
    if user or _openmp_loaded():
        _wait["policy"] = ", ".join(user) or "as loaded before llama.cpp (torch's libgomp)"
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = _wait["policy"] = WAIT_POLICY
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


#: The OpenMP wait policy llama.cpp's threads got, as :func:`build_info` reports it.
_wait: dict[str, str] = {"policy": "unknown"}


def _openmp_loaded() -> bool:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            return "libgomp" in fh.read()
    except OSError:
        return False


#: ggml CPU features a portable (AVX2) build lacks; any of them loaded means a native build.
NATIVE_FEATURES = ("AVX512", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI", "AMX_INT8", "AMX_BF16")
#: What scripts/llamacpp_wheel.sh wrote into the environment: the build it installed and why.
BUILD_RECORD = "finesift-llamacpp-build.txt"
AMX_WARNING = (
    "AMX: dies with SIGILL after a torch bf16 matmul in the same process; "
    "reinstall with scripts/llamacpp_wheel.sh (builds without AMX)"
)


def build_info() -> str:
    """Which llama.cpp build is loaded, e.g. ``"native (AVX512, AVX512_BF16); OpenMP wait: passive"``,
    with the install script's note (why a native build was not installed) where it left one."""
    llama_cpp = import_llama_cpp()
    text = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    on = [f.split("=")[0].strip() for f in text.replace("CPU :", "|").split("|") if f.strip().endswith("= 1")]
    extra = [f for f in NATIVE_FEATURES if f in on]
    kind = f"native ({', '.join(extra)})" if extra else "portable (AVX2)" if "AVX2" in on else "generic"
    notes = [f"OpenMP wait: {_wait['policy']}"] if "OPENMP = 1" in text else []
    notes += [AMX_WARNING] if "AMX_INT8" in on else []
    notes += _recorded_notes()
    return "; ".join([f"llama.cpp build: {kind}", *notes])


def _recorded_notes() -> list[str]:
    try:
        lines = (Path(sys.prefix) / BUILD_RECORD).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line.removeprefix("note: ") for line in lines if line.startswith("note: ")]


def locate(model: str, ollama_models: str | None = None) -> str:
    """``ollama:NAME:TAG`` as the path of the GGUF blob Ollama pulled; any other name unchanged
    (the backend checks it is a GGUF file once llama.cpp is known to be installed)."""
    if ollama_store.is_reference(model):
        return str(ollama_store.resolve(model, ollama_models))
    return model


def gguf_path(model: str) -> Path:
    """``model`` as an existing GGUF file (``.gguf``, or a blob that starts with the GGUF magic),
    or a clear error saying how to make one."""
    path = Path(model).expanduser()
    if not path.is_file() or (path.suffix.lower() != ".gguf" and not _has_gguf_magic(path)):
        raise InvalidRequest(
            f"the llamacpp backend needs a .gguf file, not {model!r}; convert a model directory with "
            "`finesift gguf convert DIR OUT.gguf --kind embedding|reranker`, or name a model Ollama "
            "pulled as ollama:NAME:TAG"
        )
    return path


def _has_gguf_magic(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == GGUF_MAGIC


def load(path: Path, *, context: int, embedding: bool, n_gpu_layers: int = 0, **overrides: Any) -> Any:
    """A ``llama_cpp.Llama`` whose context, batch and micro-batch all hold ``context`` tokens.

    llama.cpp's default micro-batch of 512 tokens truncates or refuses longer inputs; the
    reference reads up to ``max_length`` tokens, so every batch size is raised to it.
    """
    llama_cpp = import_llama_cpp()
    kwargs: dict[str, Any] = {
        "model_path": str(path),
        "n_ctx": context,
        "n_batch": context,
        "n_ubatch": context,
        "embedding": embedding,
        "n_gpu_layers": n_gpu_layers,
        "n_threads": max(1, (os.cpu_count() or 2)),
        "verbose": False,
        **overrides,
    }
    try:
        return llama_cpp.Llama(**kwargs)
    except (ValueError, RuntimeError, OSError) as exc:
        raise BackendError(f"llama.cpp cannot load {path}: {exc}") from exc


class LlamaTokenizer:
    """Just enough of a Hugging Face tokenizer for :mod:`finesift.rerank.prompts` over a GGUF vocabulary."""

    unk_token_id = None

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids: list[int] = self.llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True)
        return ids

    def convert_tokens_to_ids(self, word: str) -> int | None:
        ids = self.encode(word)
        return ids[0] if len(ids) == 1 else None


def file_digest(path: Path) -> str:
    """A cheap identity of a GGUF file for fingerprints: its size and first MiB, hashed."""
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(1 << 20))
    return "sha256:" + digest.hexdigest()[:16]
