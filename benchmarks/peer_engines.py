"""One CPU engine per process: ``python benchmarks/peer_engines.py SPEC.json RESULT.json``.

Engines: ``finesift``, ``finesift-fp32`` (the library), ``ort-fp32`` / ``ort-int8`` (ONNX Runtime,
ORT_ENABLE_ALL, one input per call as ``qwen3-embed`` runs it), ``llama-<type>`` (llama-cpp-python
used directly), ``finesift-llamacpp-<type>`` (finesift's llamacpp backend), ``sentence-transformers``
(embedding only). Every engine gets the same texts, the same prompt ids for reranking, the same thread
count. Load, warm up (finesift: the engine's ``warm_up()``, timed as ``warm_up_seconds``; then two
inputs, as every engine), reset the peak-RSS counter, run once, write seconds, RSS and values.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from systems import _reset_peak_rss, _rss_mb, finesift_options, warm_up  # noqa: E402

Runner = Callable[[list[Any]], list[Any]]


def _unit(v: np.ndarray) -> list[float]:
    return (v / (np.linalg.norm(v) or 1.0)).astype(np.float32).tolist()


def _sigmoid(no: float, yes: float) -> float:
    diff = yes - no
    return 1.0 / (1.0 + math.exp(-diff)) if diff > -700 else 0.0


def _ort_session(path: str, spec: dict[str, Any]) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = spec["threads"]
    opts.inter_op_num_threads = 1
    if spec["wait_policy"] == "passive":
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _ids_runner(engine: str, spec: dict[str, Any], task: str) -> Callable[[Any], Any]:
    """A function of one input: its raw vector (embed: token ids for ORT, the text for llama.cpp,
    which appends the EOS itself) or P(yes) (rerank: the prompt's token ids)."""
    if engine.startswith("ort-"):
        sess = _ort_session(spec["files"]["onnx"][engine.removeprefix("ort-")], spec)

        def ort_run(ids: list[int]) -> Any:
            x = np.asarray([ids], dtype=np.int64)
            out = sess.run(None, {"input_ids": x, "attention_mask": np.ones_like(x)})[0]
            return out[0, -1] if task == "embed" else _sigmoid(float(out[0, 0]), float(out[0, 1]))

        return ort_run
    llm = _llama(engine.removeprefix("llama-"), spec, task)
    if task == "embed":
        return lambda text: np.asarray(llm.embed(text, normalize=False), dtype=np.float32)
    yes_no = spec["yes_no"]

    def llama_score(ids: list[int]) -> float:
        llm.reset()
        llm.eval(ids)
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        return _sigmoid(float(logits[yes_no[1]]), float(logits[yes_no[0]]))

    return llama_score


def _llama(file_type: str, spec: dict[str, Any], task: str) -> Any:
    import llama_cpp

    ctx = spec["max_length"]
    kwargs: dict[str, Any] = {
        "model_path": spec["files"]["gguf"][file_type],
        "n_ctx": ctx,
        "n_threads": spec["threads"],
        "n_threads_batch": spec["threads"],
        "verbose": False,
    }
    if task == "embed":  # a pooled sequence must fit one micro-batch
        kwargs.update(
            n_batch=ctx, n_ubatch=ctx, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST
        )
    else:
        kwargs.update(n_batch=512, n_ubatch=512, logits_all=False)
    return llama_cpp.Llama(**kwargs)


def _library(engine: str, spec: dict[str, Any], task: str) -> tuple[Runner, float]:
    from finesift import load_embedder, load_reranker

    opts: dict[str, Any] = {"device": "cpu", "max_length": spec["max_length"]}
    model = spec["model"]
    if "-llamacpp-" in engine:
        model = spec["files"]["gguf"][engine.split("-llamacpp-")[1]]
        opts = {"backend": "llamacpp", "max_length": spec["max_length"]}
    else:
        opts.update(finesift_options(engine))
    if task == "embed":
        emb = load_embedder(model, **opts)
        vectors = lambda texts: np.asarray(_plain(emb.embed_documents(texts), "vectors")).tolist()  # noqa: E731
        return vectors, warm_up(emb)
    rr = load_reranker(model, **opts)
    return (
        lambda jobs: [
            s
            for j in jobs
            for s in _plain(rr.score(j["query"], j["documents"], instruction=j["instruction"]), "scores")
        ]
    ), warm_up(rr)


def _plain(result: Any, field: str) -> Any:
    """The array or list inside a finesift output (some calls return it bare)."""
    return getattr(result, field, result)


def runner(spec: dict[str, Any]) -> tuple[Runner, float | None]:
    """The engine as a function of the task's items (texts, or rerank jobs), and its warm-up seconds
    (finesift only)."""
    engine, task = spec["engine"], spec["task"]
    if engine == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(spec["model"], device="cpu")
        return (lambda texts: st.encode(texts, batch_size=32, normalize_embeddings=True).tolist()), None
    if engine.startswith("finesift"):
        return _library(engine, spec, task)
    one = _ids_runner(engine, spec, task)
    if task == "embed":
        inputs = spec["embed_ids"] if engine.startswith("ort-") else spec["items"]
        return (lambda texts: [_unit(one(x)) for x in inputs[: len(texts)]]), None
    pairs = spec["pair_ids"]
    return (lambda jobs: [one(ids) for ids in pairs[: sum(len(j["documents"]) for j in jobs)]]), None


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(spec["threads"])
    began = time.perf_counter()
    run, warm_up_s = runner(spec)
    load_s = time.perf_counter() - began - (warm_up_s or 0.0)
    items = spec["items"]
    run(items[:2] if spec["task"] == "embed" else [{**items[0], "documents": items[0]["documents"][:2]}])
    reset = _reset_peak_rss()
    began = time.perf_counter()
    values = run(items)
    return {
        "seconds": time.perf_counter() - began,
        "load_seconds": round(load_s, 1),
        "peak_rss_mib": round(_rss_mb("VmHWM"), 1),
        "peak_rss_reset": reset,
        "warm_up_seconds": warm_up_s,
        "values": values,
    }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    Path(sys.argv[2]).write_text(json.dumps(measure(spec)), encoding="utf-8")


if __name__ == "__main__":
    main()
