"""The reranker's training head: the last position's hidden state times the LM head's [no, yes] rows."""

from __future__ import annotations

from typing import Any

from finesift.rerank.prompts import PromptTokens


class YesNoHead:
    """The last position's hidden state times the LM head's [no, yes] rows: (b, 2) logits."""

    def __init__(self, lm: Any, tokens: PromptTokens, pad_id: int, device: str) -> None:
        self.lm, self.pad_id, self.device = lm, pad_id, device
        self.rows = [tokens.no_id, tokens.yes_id]

    def logits(self, batch: list[list[int]]) -> Any:
        import torch

        width = max(len(r) for r in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        hidden = decoder_of(self.lm)(input_ids=ids, attention_mask=mask).last_hidden_state
        last = hidden[torch.arange(len(batch), device=self.device), mask.sum(dim=1) - 1]
        head = self.lm.get_output_embeddings().weight[self.rows]
        return last.float() @ head.float().T


def decoder_of(lm: Any) -> Any:
    """The causal LM's decoder stack, under LoRA too (``get_decoder()`` is None on transformers 4.x)."""
    decoder = lm.get_decoder()
    if decoder is None:
        model = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
        decoder = model.model
    return decoder
