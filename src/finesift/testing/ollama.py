"""The model side of the Ollama protocol server: next-token logprobs from a real causal LM, and
tiny Qwen3-Reranker-shaped checkpoints whose first answer token is "yes" or "no", like the real one.

:class:`LogprobModel` tokenizes a raw prompt string the way Ollama does (special tokens parsed, no
BOS for Qwen3), cuts it to the context like Ollama's runner (keep the first ``num_keep`` tokens, drop
the oldest after them) and returns the top log-probabilities of the next token over the whole
vocabulary, in float32 through transformers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finesift.rerank.prompts import DEFAULT_INSTRUCTION, prompt_text

#: Tokens Ollama keeps at the start of a prompt that overflows its context (api.DefaultOptions).
NUM_KEEP = 4


@dataclass(frozen=True)
class NextToken:
    """The prompt's token count after any cut, and the top ``(piece, logprob)`` of the next token."""

    prompt_tokens: int
    top: list[tuple[str, float]]


class LogprobModel:
    """A Hugging Face causal LM directory answering "what comes next" with log-probabilities."""

    def __init__(self, path: str | Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
        self._lock = threading.Lock()

    def tokenize(self, prompt: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(prompt, add_special_tokens=False)
        return ids

    def next_token(self, prompt: str, *, top_n: int, num_ctx: int) -> NextToken:
        ids = self.tokenize(prompt)
        if len(ids) > num_ctx:
            discard = len(ids) - num_ctx
            ids = ids[:NUM_KEEP] + ids[NUM_KEEP + discard :]
        torch = self._torch
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            values, indices = torch.topk(logprobs, max(1, top_n))
        top = [
            (str(self.tokenizer.decode([int(i)])), float(v))
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        ]
        return NextToken(len(ids), top)


def build_ollama_reranker(directory: str | Path, *, seed: int = 0, spread: float = 0.18) -> Path:
    """A tiny Qwen3-Reranker-shaped checkpoint (untied LM head) whose top two next tokens after the
    reranker prompt are "yes" and "no", as with the real model.

    The last hidden states of reranker prompts share a direction (their cosine with the mean is
    positive); "yes" and "no" get that direction plus a random part of size ``spread`` that makes
    their difference, and so the score, vary with the input. Every other head row is scaled down.
    """
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    from finesift.testing.models import build_model, qwen3_config

    config = qwen3_config("reranker", tie_word_embeddings=False)
    path = build_model(directory, "reranker", config=config, seed=seed)
    tokenizer = _tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    with torch.inference_mode():
        hidden = [
            model.model(
                input_ids=torch.tensor([tokenizer.encode(p, add_special_tokens=False)])
            ).last_hidden_state[0, -1]
            for p in _SAMPLE_PROMPTS
        ]
    mean = torch.stack(hidden).mean(0)
    weights_file = path / "model.safetensors"
    weights = load_file(str(weights_file))
    head = weights["lm_head.weight"] * 0.02
    gen = torch.Generator().manual_seed(seed + 7)
    for word in ("yes", "no"):
        noise = torch.randn(head.shape[1], generator=gen) * spread
        head[tokenizer.convert_tokens_to_ids(word)] = 2.0 * mean / mean.norm() + noise
    weights["lm_head.weight"] = head.contiguous()
    save_file(weights, str(weights_file), metadata={"format": "pt"})
    return path


def _tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


_SAMPLE_PROMPTS = [
    prompt_text(instruction=DEFAULT_INSTRUCTION, query=q, document=d)
    for q, d in (
        ("what is BM25?", "BM25 ranks documents by term frequency."),
        ("capital of France", "Paris is the capital of France."),
        ("向量检索", "向量检索使用嵌入模型。"),
        ("sort a list in python", "def f(xs): return sorted(xs)"),
    )
]


def pull_into_store(root: str | Path, reference: str, gguf: str | Path) -> Path:
    """Lay ``gguf`` out in an Ollama store under ``root`` as ``ollama pull`` does: the blob named by its
    sha256, a template layer, and the manifest at ``manifests/<registry>/<namespace>/<name>/<tag>``.
    Returns the blob path."""
    import hashlib
    import json
    import shutil

    from finesift.runtime.ollama_store import MODEL_LAYER, parse

    root, ref = Path(root), parse(reference)
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    digest = "sha256:" + hashlib.sha256(Path(gguf).read_bytes()).hexdigest()
    blob = blobs / digest.replace(":", "-")
    shutil.copyfile(gguf, blob)
    template = b"{{ .Prompt }}"
    template_digest = "sha256:" + hashlib.sha256(template).hexdigest()
    (blobs / template_digest.replace(":", "-")).write_bytes(template)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": digest,
            "size": 2,
        },
        "layers": [
            {"mediaType": MODEL_LAYER, "digest": digest, "size": blob.stat().st_size},
            {"mediaType": "application/vnd.ollama.image.template", "digest": template_digest, "size": 13},
        ],
    }
    path = root / "manifests" / ref.registry / ref.namespace / ref.name / ref.tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return blob
