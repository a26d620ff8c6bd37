"""The per-task instructions of the Qwen3-Embedding MTEB evaluation, and the rule for other tasks.

``qwen3_task_prompts.json`` (package data) is the task → instruction table the published numbers used
(:data:`TABLE_SOURCE` says where it comes from). The rules follow the official evaluation code
(``evaluation/qwen3_embedding_model.py``, ``Qwen3Embedding.get_instruction``):

* STS and pair-classification tasks: ``Retrieve semantically similar text`` on both sides;
* a table entry that is a string: the query's instruction (retrieval and reranking tasks; documents
  get none) or every text's (classification, clustering, bitext mining: no query/document split);
* a table entry that is ``{"query": ..., "passage": ...}``: symmetric retrieval, both sides instructed;
* a task missing from the table: the task's own mteb prompt, else one sentence made from its
  description (the model card's rule: "one sentence describing the task") — never the web-search default.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal

Source = Literal["qwen3-table", "qwen3-rule", "mteb-task-prompt", "task-description", "override"]

#: Where ``qwen3_task_prompts.json`` comes from (recorded 2026-12-06).
TABLE_SOURCE = {
    "file": "qwen3_task_prompts.json",
    "sha256": "378cd53977925d0e241979abd9b2257b104f5bc5941288551ad1a1ddfc77229d",
    "copied_from": "https://github.com/HKUST-KnowComp/Reasoning-Embedding/blob/"
    "761051bc8d9450a20bee0dddfb3c28c714c9d23a/evaluation/task_prompts.json",
    "official": "https://github.com/QwenLM/Qwen3-Embedding/blob/"
    "f4ad0c434c0e3534494e26a4a6bdfd8ab1431968/evaluation/task_prompts.json",
    "official_lfs_oid": "sha256:c9493103f173d53b1d0a40e42789863af2ce2d5de022a0e075c390229791bfd2",
    "official_bytes": "23243",
    "note": "the official file is a Git-LFS object that could not be fetched; this copy is 1116 bytes "
    "longer, so it may hold entries the official one lacks. The instruction rules are those of "
    "QwenLM/Qwen3-Embedding evaluation/qwen3_embedding_model.py (commit f4ad0c4).",
    "recorded": "2026-12-06",
}

SIMILARITY_INSTRUCTION = "Retrieve semantically similar text"
_SIMILARITY_TYPES = frozenset({"STS", "PairClassification"})


@dataclass(frozen=True)
class TaskInstruction:
    """The instruction of each side of a task; ``document`` is ``None`` when documents get none."""

    query: str
    document: str | None
    source: Source

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "document": self.document, "source": self.source}


@cache
def qwen3_table() -> dict[str, str | dict[str, str]]:
    """The packaged task → instruction table (a string, or ``{"query", "passage"}`` for symmetric tasks)."""
    text = files("finesift.eval").joinpath("qwen3_task_prompts.json").read_text(encoding="utf-8")
    table: dict[str, str | dict[str, str]] = json.loads(text)
    return table


def is_retrieval(task_type: str) -> bool:
    """Tasks with a query side and a document side (retrieval, reranking, instruction retrieval)."""
    return "Retrieval" in task_type or "Reranking" in task_type


def task_instruction(
    name: str, task_type: str, *, prompt: Any = None, description: str = ""
) -> TaskInstruction:
    """The instruction(s) of task ``name`` of mteb type ``task_type`` (``prompt``: the task's mteb prompt)."""
    if task_type in _SIMILARITY_TYPES:
        return TaskInstruction(SIMILARITY_INSTRUCTION, SIMILARITY_INSTRUCTION, "qwen3-rule")
    entry = qwen3_table().get(name)
    retrieval = is_retrieval(task_type)
    if isinstance(entry, dict):
        return TaskInstruction(entry["query"], entry.get("passage") or entry["query"], "qwen3-table")
    if isinstance(entry, str):
        return TaskInstruction(entry, None if retrieval else entry, "qwen3-table")
    own = prompt.get("query") if isinstance(prompt, dict) else prompt
    if isinstance(own, str) and own.strip():
        return TaskInstruction(own.strip(), None if retrieval else own.strip(), "mteb-task-prompt")
    sentence = sentence_from_description(description, name=name, retrieval=retrieval)
    return TaskInstruction(sentence, None if retrieval else sentence, "task-description")


def sentence_from_description(description: str, *, name: str, retrieval: bool) -> str:
    """One sentence describing the task: the first sentence of its description, without the final stop."""
    text = " ".join(description.split())
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".!? ") if text else ""
    if len(first.split()) >= 3:
        return first
    if retrieval:
        return f"Given a query, retrieve relevant documents from {name}"
    return f"Represent the text for the {name} task"


def metadata_instruction(metadata: Any) -> TaskInstruction:
    """:func:`task_instruction` for an mteb ``TaskMetadata``."""
    return task_instruction(
        metadata.name,
        str(metadata.type),
        prompt=getattr(metadata, "prompt", None),
        description=str(getattr(metadata, "description", "") or ""),
    )
