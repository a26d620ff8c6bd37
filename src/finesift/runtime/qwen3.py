"""A lean, padding-free Qwen3 decoder forward for CPU inference, built from a loaded transformers model.

The same computation as transformers' Qwen3 (RMSNorm, per-head q/k norm, RoPE, GQA attention,
SwiGLU), rearranged for speed without changing what is computed:

- every batch is packed: all rows' tokens form one (tokens, hidden) matrix, so no work is spent on
  padding and each projection is one large matmul; attention runs per row (causal, no mask);
- q/k/v and gate/up projections are fused into one weight each at load time;
- the residual stream, the norms and RoPE stay in fp32 while matmuls and attention run in the
  model dtype (bf16 on CPU): more faithful to fp32 than transformers' all-bf16 stream, and faster,
  because this CPU's fp32 element-wise kernels outrun its bf16 ones;
- the last layer computes attention and MLP for each row's last token only (all that is pooled);
- the element-wise work between the matmuls runs as fused kernels once compiled
  (:mod:`finesift.runtime.fused`).

Rows may also continue a shared prefix whose key/value cache was computed once (the reranker's
system prompt, instruction and query); positions then continue from the prefix length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finesift.runtime.fused import Kernels, rms_norm

#: transformers model types whose decoder layers this forward reproduces.
SUPPORTED_TYPES = ("qwen3",)


def unsupported_reason(decoder: Any) -> str | None:
    """Why ``decoder`` cannot run on the packed forward, or None when it can."""
    cfg: Any = getattr(decoder, "config", None)
    if getattr(cfg, "model_type", None) not in SUPPORTED_TYPES:
        return f"model type {getattr(cfg, 'model_type', None)!r} is not Qwen3"
    if getattr(cfg, "use_sliding_window", False):
        return "sliding-window attention is not implemented in the packed forward"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"activation {cfg.hidden_act!r} is not SwiGLU"
    layer = decoder.layers[0]
    if getattr(layer.self_attn.q_proj, "bias", None) is not None:
        return "attention projections with bias are not implemented in the packed forward"
    if not hasattr(layer.self_attn.q_proj, "weight") or not hasattr(layer.mlp.gate_proj, "weight"):
        return "quantized linear layers run through transformers"
    return None


@dataclass
class _Layer:
    ln1: Any
    qkv: Any
    qk_norm: Any
    o: Any
    ln2: Any
    gate_up: Any
    down: Any


@dataclass
class PrefixKV:
    """Per-layer keys and values (kv_heads, length, head_dim) of one token prefix, after RoPE."""

    length: int
    layers: list[tuple[Any, Any]]


class PackedQwen3:
    """Packed last-token forward over the weights of a transformers ``Qwen3Model``.

    The fused weights are the storage: the transformers projections are re-pointed at row slices
    of them, so the model is held once and the transformers module still runs (doctor replays).
    """

    def __init__(self, decoder: Any, *, chunk_tokens: int = 8192, fuse: str = "auto") -> None:
        import torch

        reason = unsupported_reason(decoder)
        if reason:
            raise ValueError(reason)
        cfg = decoder.config
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(cfg.num_key_value_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads)
        self.eps = float(cfg.rms_norm_eps)
        #: Token-wise stages (projections, norms, RoPE, MLP) run in slices of this many tokens, so a
        #: single long row costs activation memory of one slice, not of its whole length.
        self.chunk_tokens = max(1, int(chunk_tokens))
        self.embed = decoder.embed_tokens.weight
        self.dtype = self.embed.dtype
        self.device = self.embed.device
        self.rotary = decoder.rotary_emb
        self.norm = decoder.norm.weight.detach().float()
        with torch.no_grad():
            self.layers = [self._fuse(layer) for layer in decoder.layers]
        shapes = {
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "hidden": int(cfg.hidden_size),
            "intermediate": int(cfg.intermediate_size),
            "eps": self.eps,
        }
        self.kernels = Kernels(fuse, device=self.device, shapes=shapes, dtype=self.dtype)

    def _fuse(self, layer: Any) -> _Layer:
        import torch

        att, mlp = layer.self_attn, layer.mlp
        return _Layer(
            ln1=layer.input_layernorm.weight.detach().float(),
            qkv=_fuse_rows(torch, [att.q_proj, att.k_proj, att.v_proj]),
            qk_norm=torch.cat(
                [
                    att.q_norm.weight.detach().float().expand(self.heads, -1),
                    att.k_norm.weight.detach().float().expand(self.kv_heads, -1),
                ]
            ),
            o=att.o_proj.weight.detach(),
            ln2=layer.post_attention_layernorm.weight.detach().float(),
            gate_up=_fuse_rows(torch, [mlp.gate_proj, mlp.up_proj]),
            down=mlp.down_proj.weight.detach(),
        )

    # -- public API -------------------------------------------------------------------------

    def last_hidden(self, rows: Sequence[Sequence[int]]) -> Any:
        """(n, hidden) fp32 final-norm states of each row's last token."""
        return self._run(rows, None)

    def prefix(self, ids: Sequence[int]) -> PrefixKV:
        """The key/value cache of ``ids`` as one sequence."""
        import torch

        kv: list[tuple[Any, Any]] = []
        with torch.inference_mode():
            self._forward(self._embed([list(ids)]), _Plan([len(ids)], 0), None, kv)
        return PrefixKV(len(ids), kv)

    def warm_up(self) -> None:
        """Compile now the fused kernels that ``fuse`` would compile at the first large forward."""
        self.kernels.prepare(None)

    def last_hidden_after(self, prefix: PrefixKV, tails: Sequence[Sequence[int]]) -> Any:
        """(n, hidden) fp32 final-norm states of the last token of ``prefix + tail`` per tail."""
        return self._run(tails, prefix)

    # -- the forward ----------------------------------------------------------------------------

    def _run(self, rows: Sequence[Sequence[int]], prefix: PrefixKV | None) -> Any:
        import torch

        if not rows or any(len(r) == 0 for r in rows):
            raise ValueError("every row needs at least one token")
        plan = _Plan([len(r) for r in rows], prefix.length if prefix else 0)
        with torch.inference_mode():
            x = self._forward(self._embed(rows), plan, prefix, None)
            return rms_norm(x, self.norm, self.eps, x.dtype)

    def _embed(self, rows: Sequence[Sequence[int]]) -> Any:
        import torch

        ids = torch.tensor([t for r in rows for t in r], device=self.device)
        return self.embed[ids].float()

    def _forward(
        self, x: Any, plan: _Plan, prefix: PrefixKV | None, keep: list[tuple[Any, Any]] | None
    ) -> Any:
        """Run every layer on packed fp32 states ``x``.

        Returns the states of each row's last token, or of every token when ``keep`` collects the
        per-layer keys and values (a prefix being cached).
        """
        self.kernels.prepare(x.shape[0])
        cos, sin = self._rope(plan)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            step = _Step(plan, cos, sin, prefix.layers[i] if prefix else None, i == last and keep is None)
            x = self._layer(layer, x, step, keep)
        return x

    def _rope(self, plan: _Plan) -> tuple[Any, Any]:
        """fp32 cos/sin (tokens, 1, head_dim) from the model's own rotary module (any RoPE type)."""
        import torch

        positions = torch.tensor(plan.positions(), device=self.device)[None]
        probe = torch.empty(0, device=self.device, dtype=torch.float32)
        cos, sin = self.rotary(probe, positions)
        return cos[0, :, None, :], sin[0, :, None, :]

    def _layer(self, w: _Layer, x: Any, step: _Step, keep: list[tuple[Any, Any]] | None) -> Any:
        import torch
        from torch.nn import functional as F

        q, k, v = self._project(w, x, step)
        if keep is not None:
            keep.append((k.transpose(0, 1).contiguous(), v.transpose(0, 1).contiguous()))
        if step.only_last:
            x = x[torch.tensor(step.plan.ends(), device=x.device) - 1]
        x = x + F.linear(self._attention(q, k, v, step), w.o)
        for start in range(0, x.shape[0], self.chunk_tokens):
            part = x[start : start + self.chunk_tokens]
            h = self.kernels.norm(part, w.ln2, self.eps, self.dtype)
            part.add_(F.linear(self.kernels.swiglu(F.linear(h, w.gate_up)), w.down))
        return x

    def _project(self, w: _Layer, x: Any, step: _Step) -> tuple[Any, Any, Any]:
        """q, k (normed, rotated) and v of every token, computed slice by slice."""
        import torch
        from torch.nn import functional as F

        parts = []
        for start in range(0, x.shape[0], self.chunk_tokens):
            end = start + self.chunk_tokens
            h = self.kernels.norm(x[start:end], w.ln1, self.eps, self.dtype)
            parts.append(self._qkv(F.linear(h, w.qkv), w, step.cos[start:end], step.sin[start:end]))
        if len(parts) == 1:
            return parts[0]
        q, k, v = (torch.cat(list(group)) for group in zip(*parts, strict=True))
        return q, k, v

    def _qkv(self, qkv: Any, w: _Layer, cos: Any, sin: Any) -> tuple[Any, Any, Any]:
        """Split the fused projection; q and k get their per-head RMSNorm and RoPE together, in fp32."""
        t, d, heads = qkv.shape[0], self.head_dim, self.heads + self.kv_heads
        qk = self.kernels.qk(qkv[:, : heads * d].view(t, heads, d), w.qk_norm, cos, sin, self.eps)
        v = qkv[:, heads * d :].view(t, self.kv_heads, d)
        return qk[:, : self.heads], qk[:, self.heads :], v

    def _attention(self, q: Any, k: Any, v: Any, step: _Step) -> Any:
        """Causal attention per row: (rows, or tokens when every position is kept, heads * head_dim).

        After a cached prefix of ``P`` tokens, a row's queries are padded with ``P`` unused rows in
        front, so that ``is_causal``'s diagonal (which starts at the first query and key) lines up with
        theirs. SDPA then skips the key blocks above it, which a boolean mask made it compute (and it
        built an additive mask per call): 1.7-1.8x faster for a 1,500-token row after a 90-token prefix,
        3 % for a 390-token one, whose keys fit one block (benchmarks/cpu_kernels.py). The pad's
        outputs are dropped; the rows' own are bit-identical to the masked call's.
        """
        import torch
        from torch.nn import functional as F

        pad = 0 if step.past is None or step.only_last else step.plan.offset
        outs = []
        for start, end in step.plan.spans():
            qs = q[end - 1 : end] if step.only_last else q[start:end]
            ks, vs = k[start:end].transpose(0, 1), v[start:end].transpose(0, 1)
            if step.past is not None:
                ks = torch.cat([step.past[0], ks], dim=1)
                vs = torch.cat([step.past[1], vs], dim=1)
            if pad:
                qs = torch.cat([step.plan.pad(pad, qs), qs])
            out = F.scaled_dot_product_attention(
                qs.transpose(0, 1)[None],
                ks[None],
                vs[None],
                # The last token sees its whole row, so it needs no causal mask.
                is_causal=not step.only_last,
                enable_gqa=True,
            )
            outs.append(out[0].transpose(0, 1)[pad:].reshape(-1, self.heads * self.head_dim))
        return torch.cat(outs) if len(outs) > 1 else outs[0]


@dataclass
class _Step:
    """What one layer needs besides its weights: row spans, RoPE tables, the prefix cache."""

    plan: _Plan
    cos: Any
    sin: Any
    past: tuple[Any, Any] | None
    only_last: bool


class _Plan:
    """Where each packed row starts and ends, and the prefix length all rows continue.

    Built once per forward and read by every layer, so spans and the query pad are made once, not per layer.
    """

    def __init__(self, lengths: Sequence[int], offset: int) -> None:
        self.lengths = list(lengths)
        self.offset = offset
        self._spans: list[tuple[int, int]] = []
        start = 0
        for n in self.lengths:
            self._spans.append((start, start + n))
            start += n
        self._pad: Any = None

    def spans(self) -> list[tuple[int, int]]:
        return self._spans

    def ends(self) -> list[int]:
        return [end for _, end in self._spans]

    def positions(self) -> list[int]:
        return [self.offset + i for n in self.lengths for i in range(n)]

    def pad(self, rows: int, like: Any) -> Any:
        """``rows`` unused query rows shaped as ``like``'s (zeros, made once per forward)."""
        if self._pad is None or self._pad.shape[0] != rows:
            import torch

            self._pad = torch.zeros((rows, *like.shape[1:]), dtype=like.dtype, device=like.device)
        return self._pad


def _fuse_rows(torch: Any, linears: list[Any]) -> Any:
    """One weight stacking the linears' rows; each linear then reads its rows as a view of it."""
    fused = torch.cat([m.weight.detach() for m in linears]).contiguous()
    start = 0
    for m in linears:
        rows = m.weight.shape[0]
        m.weight = torch.nn.Parameter(fused[start : start + rows], requires_grad=False)
        start += rows
    return fused
