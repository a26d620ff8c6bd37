"""Ollama Modelfiles for the GGUF files ``finesift gguf convert`` writes (``ollama create NAME -f FILE``).

It lives beside the reranker prompt because the reranker's template is that prompt. The embedding
file needs no chat template (Ollama's ``/api/embed`` tokenizes the text as given, and the GGUF
appends ``<|endoftext|>`` itself). The reranker's template wraps the user turn in the model card's
system prefix and assistant suffix, so a plain ``/api/generate`` with the body
``<Instruct>: …\\n<Query>: …\\n<Document>: …`` is scored like the model card; finesift's ``ollama``
reranker sends the whole prompt with ``raw: true``, which bypasses the template, so both agree.
One token at temperature 0 is all a yes/no judgement needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from finesift.rerank.prompts import PREFIX, SUFFIX

Kind = Literal["embedding", "reranker"]
#: The context the model cards evaluate with (the models accept 32k; Ollama allocates what is asked).
CONTEXT = 8192


def modelfile_text(gguf_name: str, *, kind: Kind, context: int = CONTEXT) -> str:
    """The Modelfile for ``gguf_name`` (a file in the same folder) as one string."""
    lines = ["# ollama create NAME -f <this file>   (FROM is relative to this file's folder)"]
    lines.append(f"FROM ./{gguf_name}")
    if kind == "embedding":
        lines += [
            "# Qwen3-Embedding: no chat template; finesift adds the query instruction itself.",
            'TEMPLATE "{{ .Prompt }}"',
            f"PARAMETER num_ctx {context}",
        ]
    else:
        lines += [
            "# Qwen3-Reranker: the model card's prompt; the answer is one token, yes or no.",
            f'TEMPLATE """{PREFIX}{{{{ .Prompt }}}}{SUFFIX}"""',
            f"PARAMETER num_ctx {context}",
            "PARAMETER num_predict 1",
            "PARAMETER temperature 0",
        ]
    return "\n".join(lines) + "\n"


def write_modelfile(gguf: Path, *, kind: Kind, context: int = CONTEXT) -> Path:
    """Write ``<gguf stem>.Modelfile`` beside ``gguf``; returns its path."""
    target = gguf.with_name(gguf.stem + ".Modelfile")
    target.write_text(modelfile_text(gguf.name, kind=kind, context=context), encoding="utf-8")
    return target
