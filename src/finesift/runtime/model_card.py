"""The model-card reference code of Qwen3-Embedding and Qwen3-Reranker, kept as written.

``finesift doctor`` (its reference), the tests and the benchmarks compare against these: they use the
full ``model(**inputs)`` forward with right-sized padding, whole-body truncation and full-vocabulary
logits, exactly like the published examples, including their ``.to(model.device)`` of the inputs. This
file imports nothing from finesift, so it cannot share a bug with the backends it judges. Do not
optimise it. (``finesift.testing.reference`` re-exports it for the tests.)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

DEFAULT_TASK = "Given a web search query, retrieve relevant passages that answer the query"
PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def get_detailed_instruct(task_description: str, query: str) -> str:
    return f"Instruct: {task_description}\nQuery:{query}"


def last_token_pool(last_hidden_states: Any, attention_mask: Any) -> Any:
    import torch

    left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
    if left_padding:
        return last_hidden_states[:, -1]
    sequence_lengths = attention_mask.sum(dim=1) - 1
    batch_size = last_hidden_states.shape[0]
    return last_hidden_states[torch.arange(batch_size, device=last_hidden_states.device), sequence_lengths]


class ReferenceEmbedder:
    """The Qwen3-Embedding model card (transformers usage), batch as given."""

    def __init__(self, path: str, *, dtype: Any = None, max_length: int = 8192, device: str = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        kwargs = {} if dtype is None else {"dtype": dtype}
        self.model = AutoModel.from_pretrained(path, **kwargs).to(device).eval()
        self.max_length = max_length

    def embed(self, input_texts: Sequence[str], dim: int | None = None) -> Any:
        import torch
        import torch.nn.functional as F

        batch_dict = self.tokenizer(
            list(input_texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        batch_dict.to(self.model.device)
        with torch.no_grad():
            outputs = self.model(**batch_dict)
        embeddings = last_token_pool(outputs.last_hidden_state, batch_dict["attention_mask"])
        if dim is not None:
            embeddings = embeddings[:, :dim]
        return F.normalize(embeddings.float(), p=2, dim=1).cpu().numpy()


class ReferenceReranker:
    """The Qwen3-Reranker model card (transformers usage), batch as given."""

    def __init__(self, path: str, *, dtype: Any = None, max_length: int = 8192, device: str = "cpu") -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        kwargs = {} if dtype is None else {"dtype": dtype}
        self.model = AutoModelForCausalLM.from_pretrained(path, **kwargs).to(device).eval()  # type: ignore[arg-type]
        self.token_false_id = self.tokenizer.convert_tokens_to_ids("no")
        self.token_true_id = self.tokenizer.convert_tokens_to_ids("yes")
        self.max_length = max_length
        self.prefix_tokens = self.tokenizer.encode(PREFIX, add_special_tokens=False)
        self.suffix_tokens = self.tokenizer.encode(SUFFIX, add_special_tokens=False)

    @staticmethod
    def format_instruction(instruction: str | None, query: str, doc: str) -> str:
        if instruction is None:
            instruction = DEFAULT_TASK
        return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"

    def process_inputs(self, pairs: list[str]) -> Any:
        inputs = self.tokenizer(
            pairs,
            padding=False,
            truncation="longest_first",
            return_attention_mask=False,
            max_length=self.max_length - len(self.prefix_tokens) - len(self.suffix_tokens),
        )
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = self.prefix_tokens + ele + self.suffix_tokens
        with warnings.catch_warnings():  # the model card passes max_length with padding=True, which warns
            warnings.simplefilter("ignore", UserWarning)
            inputs = self.tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=self.max_length)
        for key in inputs:
            inputs[key] = inputs[key].to(self.model.device)
        return inputs

    def compute_logits(self, inputs: Any) -> list[float]:
        import torch

        with torch.no_grad():
            batch_scores = self.model(**inputs).logits[:, -1, :]
            true_vector = batch_scores[:, self.token_true_id]
            false_vector = batch_scores[:, self.token_false_id]
            batch_scores = torch.stack([false_vector, true_vector], dim=1)
            batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
            return batch_scores[:, 1].exp().tolist()

    def score(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[float]:
        pairs = [self.format_instruction(instruction, query, doc) for doc in documents]
        return self.compute_logits(self.process_inputs(pairs))
