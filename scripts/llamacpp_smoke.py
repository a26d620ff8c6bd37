"""Smoke test of the installed llama-cpp-python: a tiny Qwen3 GGUF, quantized and decoded.

    python scripts/llamacpp_smoke.py

scripts/llamacpp_wheel.sh runs it in its own process after installing a native wheel: a build whose
instructions this machine does not execute (SIGILL) dies here, not in a user's process, and the
script falls back to the portable wheel. It writes a 2-layer model with random f32 weights (no
vocabulary: token ids go in directly), quantizes it the ways users run GGUF files (F16, Q8_0,
Q4_K_M: the types with AMX and VNNI kernels), and decodes a prompt and one more token with logits
and in embedding mode. Where torch is installed, it then runs a bf16 matmul (oneDNN; AMX tiles on
CPUs that have them) and decodes again in the same process, as finesift does when one backend runs
on torch and another on llama.cpp: a ggml built with AMX dies there with SIGILL, because oneDNN
releases the tile configuration that ggml loaded once per thread. Standard library and llama_cpp
(torch if present); prints one line, exits 0 when all ran.
"""

from __future__ import annotations

import math
import random
import struct
import sys
import tempfile
from array import array
from pathlib import Path

HIDDEN, FFN, VOCAB, LAYERS, HEADS, KV_HEADS, HEAD_DIM = 256, 512, 256, 2, 4, 2, 64
#: llama.cpp's file types (enum llama_ftype) for the quantized copies.
TYPES = {"f16": 1, "q8_0": 7, "q4_k_m": 15}
PROMPT = 48  # tokens: a batch large enough for the matrix-matrix kernels (AMX tiles take 16 rows)


def tensors() -> dict[str, tuple[int, ...]]:
    """Name -> shape (GGUF order: the row length first) of a Qwen3 model."""
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (HIDDEN, VOCAB)}
    shapes["output_norm.weight"] = (HIDDEN,)
    for i in range(LAYERS):
        shapes |= {
            f"blk.{i}.attn_norm.weight": (HIDDEN,),
            f"blk.{i}.attn_q.weight": (HIDDEN, HEADS * HEAD_DIM),
            f"blk.{i}.attn_k.weight": (HIDDEN, KV_HEADS * HEAD_DIM),
            f"blk.{i}.attn_v.weight": (HIDDEN, KV_HEADS * HEAD_DIM),
            f"blk.{i}.attn_output.weight": (HEADS * HEAD_DIM, HIDDEN),
            f"blk.{i}.attn_q_norm.weight": (HEAD_DIM,),
            f"blk.{i}.attn_k_norm.weight": (HEAD_DIM,),
            f"blk.{i}.ffn_norm.weight": (HIDDEN,),
            f"blk.{i}.ffn_gate.weight": (HIDDEN, FFN),
            f"blk.{i}.ffn_up.weight": (HIDDEN, FFN),
            f"blk.{i}.ffn_down.weight": (FFN, HIDDEN),
        }
    return shapes


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _metadata() -> tuple[int, bytes]:
    """The key-value pairs (GGUF value types: 4 uint32, 6 float32, 8 string)."""
    values: list[tuple[str, int, object]] = [
        ("general.architecture", 8, "qwen3"),
        ("qwen3.block_count", 4, LAYERS),
        ("qwen3.context_length", 4, 128),
        ("qwen3.embedding_length", 4, HIDDEN),
        ("qwen3.feed_forward_length", 4, FFN),
        ("qwen3.attention.head_count", 4, HEADS),
        ("qwen3.attention.head_count_kv", 4, KV_HEADS),
        ("qwen3.attention.key_length", 4, HEAD_DIM),
        ("qwen3.attention.value_length", 4, HEAD_DIM),
        ("qwen3.attention.layer_norm_rms_epsilon", 6, 1e-6),
        ("qwen3.rope.freq_base", 6, 1e6),
        ("qwen3.vocab_size", 4, VOCAB),
        ("qwen3.pooling_type", 4, 3),  # last token, as Qwen3-Embedding
        ("tokenizer.ggml.model", 8, "none"),
    ]
    out = b""
    for key, kind, value in values:
        packed = _string(str(value)) if kind == 8 else struct.pack("<f" if kind == 6 else "<I", value)
        out += _string(key) + struct.pack("<I", kind) + packed
    return len(values), out


def write_model(path: Path, seed: int = 0) -> None:
    """A GGUF v3 file of f32 tensors: norms of ones, weights uniform in ±1/sqrt(row length)."""
    rng, shapes = random.Random(seed), tensors()
    count, metadata = _metadata()
    header = b"GGUF" + struct.pack("<IQQ", 3, len(shapes), count) + metadata
    infos, blobs, offset = b"", [], 0
    for name, shape in shapes.items():
        size, bound = math.prod(shape), 1 / math.sqrt(shape[0])
        if len(shape) == 1:
            data = array("f", [1.0]) * size
        else:
            data = array("f", (rng.uniform(-bound, bound) for _ in range(size)))
        infos += _string(name) + struct.pack(f"<I{len(shape)}QIQ", len(shape), *shape, 0, offset)
        blobs.append(data.tobytes())
        offset += len(blobs[-1])  # every size is a multiple of 32, GGUF's alignment
    head = header + infos
    with open(path, "wb") as fh:
        fh.write(head + b"\0" * (-len(head) % 32))
        for blob in blobs:
            fh.write(blob)


def quantize(llama_cpp, source: Path, target: Path, ftype: int) -> None:
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), params) != 0:
        raise RuntimeError(f"llama.cpp could not quantize to file type {ftype}")


def decode(llama_cpp, path: Path) -> None:
    """A prompt and one more token: logits, then the last-token embedding; all finite."""
    tokens = [(7 * i + 3) % VOCAB for i in range(PROMPT)]
    for embedding in (False, True):
        sizes = {"n_ctx": 128, "n_batch": 128, "n_ubatch": 128}
        llm = llama_cpp.Llama(model_path=str(path), n_threads=2, embedding=embedding, verbose=False, **sizes)
        llm.eval(tokens)
        llm.eval(tokens[:1])
        if embedding:
            out, size = llama_cpp.llama_get_embeddings_seq(llm.ctx, 0), HIDDEN
        else:
            out, size = llama_cpp.llama_get_logits_ith(llm.ctx, -1), VOCAB
        values = [out[i] for i in range(size)]
        if not all(math.isfinite(v) for v in values) or not any(values):
            raise RuntimeError(f"{path.name}: non-finite or zero outputs ({embedding=}, {values[:4]})")
        llm.close()


def torch_matmul() -> bool:
    """A bf16 matmul through PyTorch on this process's threads; False where torch is not installed."""
    try:
        import torch
    except ImportError:
        return False
    a, w = torch.randn(64, 1024, dtype=torch.bfloat16), torch.randn(1024, 1024, dtype=torch.bfloat16)
    torch.nn.functional.linear(a, w)
    return True


def main() -> int:
    import llama_cpp

    with tempfile.TemporaryDirectory(prefix="llamacpp-smoke-") as tmp:
        source = Path(tmp) / "tiny.f32.gguf"
        write_model(source)
        decode(llama_cpp, source)
        for name, ftype in TYPES.items():
            target = Path(tmp) / f"tiny.{name}.gguf"
            quantize(llama_cpp, source, target, ftype)
            decode(llama_cpp, target)
        mixed = torch_matmul()
        if mixed:
            decode(llama_cpp, Path(tmp) / "tiny.q8_0.gguf")
    after = ", and q8_0 again after a torch bf16 matmul" if mixed else " (no torch: not tried beside it)"
    print(f"llama.cpp smoke test passed: f32, {', '.join(TYPES)} decoded{after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
