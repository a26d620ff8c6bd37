"""Convert a Hugging Face Qwen3 checkpoint directory to GGUF with the ``gguf`` package.

The embedding file records last-token pooling and ``add_eos_token`` so that llama.cpp appends
``<|endoftext|>`` like the reference tokenizer (the missing-EOS bug of early Qwen3 GGUFs). The
reranker file is the plain causal LM: finesift scores its yes/no logits itself. ``f32``, ``f16``,
``bf16`` and ``q8_0`` are written directly; every other type (:data:`LLAMA_TYPES`) is quantized
from an f32 file by llama.cpp's own quantizer (``llama_model_quantize``, what ``llama-quantize``
runs; the ``llamacpp`` extra), which copies the metadata, so the EOS and pooling fixes carry over.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from finesift.errors import BackendError, InvalidRequest, MissingDependency
from finesift.runtime import hf

log = logging.getLogger(__name__)
Kind = Literal["embedding", "reranker"]
DIRECT_TYPES = ("f32", "f16", "bf16", "q8_0")
#: Every type llama-quantize offers for a dense model that needs no importance matrix (IQ1_*, IQ2_*
#: and Q2_K_S refuse to run without one; TQ*_0 are for ternary models), best first. The value is
#: llama.cpp's ``llama_ftype`` (``LLAMA_FTYPE_MOSTLY_<NAME>`` in llama.h).
LLAMA_TYPES: dict[str, int] = {
    "q6_k": 18,
    "q5_k_m": 17,
    "q5_k_s": 16,
    "q5_1": 9,
    "q5_0": 8,
    "q4_k_m": 15,
    "q4_k_s": 14,
    "q4_1": 3,
    "q4_0": 2,
    "iq4_nl": 25,
    "iq4_xs": 30,
    "q3_k_l": 13,
    "q3_k_m": 12,
    "q3_k_s": 11,
    "iq3_m": 27,
    "iq3_s": 26,
    "iq3_xs": 22,
    "iq3_xxs": 23,
    "q2_k": 10,
}
FILE_TYPES = (*DIRECT_TYPES, *LLAMA_TYPES)
#: The quantization report's default: what the articles about these models compare, best first.
REPORT_TYPES = ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k")
EOS_TOKEN = "<|endoftext|>"


def _import_gguf() -> Any:
    try:
        import gguf
    except ImportError as exc:
        raise MissingDependency("gguf", "gguf", "needed to convert models to GGUF") from exc
    return gguf


def convert(model_dir: str | Path, out: str | Path, *, kind: Kind, file_type: str = "f16") -> Path:
    """Write ``model_dir`` (a Qwen3 checkpoint) as a GGUF file of ``file_type``; returns ``out``."""
    file_type = file_type.lower()
    if file_type not in FILE_TYPES:
        raise InvalidRequest(f"unknown GGUF type {file_type!r}; choose one of {', '.join(FILE_TYPES)}")
    if kind not in ("embedding", "reranker"):
        raise InvalidRequest(f"kind must be 'embedding' or 'reranker', not {kind!r}")
    src, dst = Path(model_dir), Path(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if file_type in LLAMA_TYPES:
        _llama_cpp(file_type)  # fail before spending minutes on the f32 file
        f32 = dst.with_name(dst.stem + ".f32.tmp.gguf")
        _write(src, f32, kind=kind, file_type="f32")
        try:
            quantize(f32, dst, file_type)
        finally:
            f32.unlink(missing_ok=True)
        return dst
    _write(src, dst, kind=kind, file_type=file_type)
    return dst


def cached_conversion(model: str, cache: Path, *, kind: str, file_type: str = "f16") -> Path:
    """The GGUF of a local model directory, converted once and kept under ``cache``."""
    path = Path(model).expanduser()
    if not path.is_dir():
        raise InvalidRequest(
            f"llamacpp needs a .gguf file or a local model directory to convert, not {model!r}"
        )
    digest = hf.revision_of(path).replace(":", "-")
    target = cache / f"{path.name}-{kind}-{digest}-{file_type.lower()}.gguf"
    if not target.is_file():
        log.info("converting %s to %s", path, target)
        tmp = target.with_suffix(".partial.gguf")
        convert(path, tmp, kind="embedding" if kind == "embedding" else "reranker", file_type=file_type)
        tmp.replace(target)
    return target


def _write(src: Path, dst: Path, *, kind: Kind, file_type: str) -> None:
    gguf = _import_gguf()
    config = hf.read_config(src)
    if config.get("model_type") != "qwen3":
        raise InvalidRequest(
            f"{src} is a {config.get('model_type')!r} model; GGUF conversion supports Qwen3 only"
        )
    writer = gguf.GGUFWriter(str(dst), "qwen3")
    _write_hparams(gguf, writer, config, kind, file_type, name=src.name)
    _write_vocab(gguf, writer, src, config, kind)
    for name, array in _tensors(src):
        _add_tensor(gguf, writer, name, array, file_type, n_blocks=int(config["num_hidden_layers"]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _write_hparams(gguf: Any, w: Any, cfg: dict[str, Any], kind: Kind, file_type: str, *, name: str) -> None:
    head_dim = int(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
    w.add_name(name)
    w.add_context_length(int(cfg.get("max_position_embeddings", 32768)))
    w.add_embedding_length(int(cfg["hidden_size"]))
    w.add_block_count(int(cfg["num_hidden_layers"]))
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    w.add_head_count(int(cfg["num_attention_heads"]))
    w.add_head_count_kv(int(cfg.get("num_key_value_heads", cfg["num_attention_heads"])))
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_freq_base(float(cfg.get("rope_theta", 1000000)))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    ftype = gguf.LlamaFileType
    types = {
        "f32": ftype.ALL_F32,
        "f16": ftype.MOSTLY_F16,
        "bf16": ftype.MOSTLY_BF16,
        "q8_0": ftype.MOSTLY_Q8_0,
    }
    w.add_file_type(int(types[file_type]))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if kind == "embedding":
        w.add_pooling_type(gguf.PoolingType.LAST)


def _write_vocab(gguf: Any, w: Any, src: Path, cfg: dict[str, Any], kind: Kind) -> None:
    """Byte-level BPE vocabulary, merges and special ids, as llama.cpp's converter writes them for Qwen."""
    try:
        data = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackendError(f"{src} has no readable tokenizer.json: {exc}") from exc
    vocab: dict[str, int] = data["model"]["vocab"]
    added = {t["id"]: t for t in data.get("added_tokens", [])}
    size = int(cfg.get("vocab_size", len(vocab) + len(added)))
    by_id = {i: tok for tok, i in vocab.items()}
    tokens, types = [], []
    for i in range(size):
        if i in added:
            text = added[i]["content"]
            special = added[i].get("special") or (text.startswith("<|") and text.endswith("|>"))
            tokens.append(text)
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        elif i in by_id:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"].get("merges", [])]
    ids = {t["content"]: t["id"] for t in added.values()}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    eos = ids[EOS_TOKEN] if kind == "embedding" else ids.get("<|im_end|>", ids[EOS_TOKEN])
    w.add_bos_token_id(ids[EOS_TOKEN])
    w.add_eos_token_id(eos)
    w.add_pad_token_id(ids[EOS_TOKEN])
    w.add_add_bos_token(False)
    w.add_add_eos_token(kind == "embedding")


def _tensors(src: Path) -> Any:
    """(HF name, float32 array) for every weight, reading safetensors only."""
    hf.check_weights(src)
    try:
        from safetensors import safe_open
    except ImportError as exc:
        raise MissingDependency("safetensors", "gguf") from exc
    for file in sorted(src.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                yield name, fh.get_tensor(name).float().numpy()


def _add_tensor(gguf: Any, w: Any, hf_name: str, array: Any, file_type: str, *, n_blocks: int) -> None:
    import numpy as np

    name = hf_name if hf_name.startswith(("model.", "lm_head")) else "model." + hf_name
    mapped = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN3, n_blocks).get_name(
        name, try_suffixes=(".weight", ".bias")
    )
    if mapped is None:
        raise BackendError(f"cannot map tensor {hf_name!r} to GGUF; is this a Qwen3 checkpoint?")
    q = gguf.GGMLQuantizationType
    if array.ndim < 2 or file_type == "f32":
        w.add_tensor(mapped, array.astype(np.float32))
    elif file_type == "f16":
        w.add_tensor(mapped, array.astype(np.float16))
    else:
        qtype = q.BF16 if file_type == "bf16" else q.Q8_0
        if qtype == q.Q8_0 and array.shape[-1] % 32:
            w.add_tensor(mapped, array.astype(np.float16))  # rows not a multiple of the block size
            return
        w.add_tensor(mapped, gguf.quants.quantize(array, qtype), raw_dtype=qtype)


def _llama_cpp(file_type: str) -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependency(
            "llama-cpp-python",
            "llamacpp",
            f"needed for {file_type}; without it use one of {', '.join(DIRECT_TYPES)}",
        ) from exc
    return llama_cpp


def quantize(source: Path, target: Path, file_type: str) -> None:
    """Quantize an f32/f16 GGUF to ``file_type`` (one of :data:`LLAMA_TYPES`) with llama.cpp's quantizer.

    Tensors whose rows do not fit the type's block size get llama.cpp's usual fallback type.
    """
    llama_cpp = _llama_cpp(file_type)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_TYPES[file_type]
    params.nthread = max(1, os.cpu_count() or 1)
    args = (str(source).encode(), str(target).encode(), ctypes.byref(params))
    try:
        with _quiet(llama_cpp):
            status = llama_cpp.llama_model_quantize(*args)
    except Exception as exc:  # llama.cpp's C++ exceptions surface as plain errors or a status
        raise BackendError(f"llama.cpp could not quantize {source} to {file_type}: {exc}") from exc
    if status != 0:
        raise BackendError(f"llama.cpp could not quantize {source} to {file_type} (status {status})")


def _quiet(llama_cpp: Any) -> Any:
    """llama.cpp prints every tensor while quantizing; keep that off the terminal unless debugging."""
    if log.isEnabledFor(logging.DEBUG):
        return contextlib.nullcontext()
    try:
        from llama_cpp._utils import suppress_stdout_stderr
    except ImportError:
        return contextlib.nullcontext()
    return suppress_stdout_stderr(disable=False)
