"""The peers' model files, built once from the true-shape checkpoints and cached next to them.

ONNX: exported with ``torch.onnx`` from the fp32 checkpoint (eager attention, batch and length dynamic),
then ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, per tensor) as ``qwen3-embed`` ships
its files. The embedding graph returns the last hidden state; the reranker graph returns the last
position's [no, yes] logits. GGUF: ``finesift gguf convert`` at each type.

    python benchmarks/peer_export.py MODEL_DIR --kind embedding|reranker [--gguf f16,q8_0,q4_k_m]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def _stamp_ok(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def onnx_files(model_dir: Path, kind: str) -> dict[str, str]:
    """{"fp32": path, "int8": path} of the model's ONNX graphs, exported on first use."""
    out = model_dir / "onnx"
    fp32, int8 = out / "model.onnx", out / "model_int8.onnx"
    if not _stamp_ok(fp32):
        _export(model_dir, kind, fp32)
    if not _stamp_ok(int8):
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, use_external_data_format=True)
    return {"fp32": str(fp32), "int8": str(int8)}


class _Embed(torch.nn.Module):
    """input ids, mask -> the last hidden state (pooled by the caller)."""

    def __init__(self, base: Any) -> None:
        super().__init__()
        self.base = base

    def forward(self, input_ids: Any, attention_mask: Any) -> Any:
        return self.base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class _Rerank(torch.nn.Module):
    """input ids, mask -> the last position's [no, yes] logits (the LM head on that row only)."""

    def __init__(self, lm: Any, pick: list[int]) -> None:
        super().__init__()
        self.lm = lm
        self.register_buffer("pick", torch.tensor(pick), persistent=False)

    def forward(self, input_ids: Any, attention_mask: Any) -> Any:
        hidden = self.lm.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.lm.lm_head(hidden[:, -1])[:, self.pick]


def _wrapper(model_dir: Path, kind: str) -> Any:
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    opts: dict[str, Any] = {"dtype": torch.float32, "attn_implementation": "eager"}
    if kind == "embedding":
        module: torch.nn.Module = _Embed(AutoModel.from_pretrained(str(model_dir), **opts))
    else:
        tok = AutoTokenizer.from_pretrained(str(model_dir))
        pick = [tok.convert_tokens_to_ids("no"), tok.convert_tokens_to_ids("yes")]
        module = _Rerank(AutoModelForCausalLM.from_pretrained(str(model_dir), **opts), pick)
    return module.eval().requires_grad_(False)


def _export(model_dir: Path, kind: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    module = _wrapper(model_dir, kind)
    ids = torch.ones(1, 16, dtype=torch.long)
    output = "last_hidden_state" if kind == "embedding" else "no_yes_logits"
    with torch.no_grad():
        torch.onnx.export(
            module,
            (ids, torch.ones_like(ids)),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=[output],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
            opset_version=17,
            dynamo=False,
        )


def gguf_files(model_dir: Path, kind: str, types: list[str]) -> dict[str, str]:
    """{type: path} of the model's GGUF files, converted on first use."""
    from finesift.runtime.gguf import convert

    out = {}
    for file_type in types:
        path = model_dir / "gguf" / f"model.{file_type}.gguf"
        if not _stamp_ok(path):
            convert(model_dir, path, kind=kind, file_type=file_type)  # type: ignore[arg-type]
        out[file_type] = str(path)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("--kind", choices=("embedding", "reranker"), required=True)
    p.add_argument("--gguf", default="f16,q8_0,q4_k_m")
    p.add_argument("--no-onnx", action="store_true")
    args = p.parse_args()
    files: dict[str, Any] = {
        "gguf": gguf_files(args.model, args.kind, [t for t in args.gguf.split(",") if t])
    }
    if not args.no_onnx:
        files["onnx"] = onnx_files(args.model, args.kind)
    print(json.dumps(files))


if __name__ == "__main__":
    main()
