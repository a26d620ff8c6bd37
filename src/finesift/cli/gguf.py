"""``finesift gguf``: convert a Qwen3 checkpoint to GGUF (with an Ollama Modelfile), and the
quantization report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from finesift.cli.common import settings_of, with_role
from finesift.cli.eval import _sample
from finesift.cli.options import setting
from finesift.errors import InvalidRequest
from finesift.rerank.modelfile import write_modelfile
from finesift.runtime.gguf import FILE_TYPES, REPORT_TYPES, Kind
from finesift.runtime.gguf import convert as run

if TYPE_CHECKING:
    from finesift.eval.datasets import BeirDataset

gguf_app = typer.Typer(help="GGUF files for the llamacpp backend and Ollama.", no_args_is_help=True)


@gguf_app.command("convert")
def convert(
    model_dir: Annotated[
        Path, typer.Argument(help="Qwen3-Embedding or Qwen3-Reranker checkpoint directory.")
    ],
    out: Annotated[Path, typer.Argument(help="The .gguf file to write.")],
    kind: Annotated[str, typer.Option(help="embedding | reranker")] = "embedding",
    file_type: Annotated[
        str,
        typer.Option(
            "--type",
            help=f"{' | '.join(FILE_TYPES)}. f32/f16/bf16/q8_0 need only the gguf extra; "
            "the others run llama.cpp's quantizer (the llamacpp extra).",
        ),
    ] = "f16",
    modelfile: Annotated[
        bool, typer.Option("--modelfile/--no-modelfile", help="Write OUT's Ollama Modelfile beside it.")
    ] = True,
) -> None:
    """Convert MODEL_DIR to GGUF (embedding files append EOS and pool the last token).

    Beside OUT goes OUT's Modelfile; `ollama create NAME -f OUT.Modelfile` then serves it.
    """
    if kind not in ("embedding", "reranker"):
        raise InvalidRequest(f"--kind must be embedding or reranker, not {kind!r}")
    role: Kind = "embedding" if kind == "embedding" else "reranker"
    began = time.perf_counter()
    path = run(model_dir, out, kind=role, file_type=file_type)
    seconds = time.perf_counter() - began
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {file_type}, {seconds:.1f} s)")
    if modelfile:
        written = write_modelfile(path, kind=role)
        typer.echo(f"wrote {written}; load it into Ollama with: ollama create NAME -f {written}")


@gguf_app.command("report")
def report(
    ctx: typer.Context,
    model_dir: Annotated[
        Path, typer.Argument(help="Qwen3-Embedding checkpoint directory (the fp32 reference).")
    ],
    data_dir: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")
    ],
    types: Annotated[
        str,
        typer.Option(
            help="Comma-separated GGUF types to convert and compare; a .gguf file or a GGUF hub "
            "reference (owner/name-GGUF:q8_0) is used as is.",
        ),
    ] = ",".join(REPORT_TYPES),
    dims: Annotated[
        str, typer.Option(help="Comma-separated Matryoshka dimensions; full = the model's.")
    ] = "full",
    split: Annotated[str, typer.Option(help="Which qrels/<split>.tsv to evaluate.")] = "test",
    max_queries: Annotated[int | None, typer.Option(help="Evaluate a seeded sample of N queries.")] = None,
    max_docs: Annotated[
        int | None,
        typer.Option(help="Keep the judged documents and a seeded sample of the others, N in all."),
    ] = None,
    max_length: Annotated[int | None, setting(path="embedding.max_length")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
) -> None:
    """Which GGUF type and Matryoshka dimension for this corpus: nDCG@10, cosine and |Δ| to fp32,
    vector bytes and speed, one row per type and dimension."""
    from finesift.eval.cache import EmbeddingCache
    from finesift.eval.datasets import load_beir
    from finesift.eval.quantization import QuantReportSpec, quantization_report, report_table
    from finesift.eval.runner import Evaluator

    settings = with_role(settings_of(ctx), "embedding", max_length=max_length)
    spec = QuantReportSpec(
        model=str(model_dir),
        types=[t.strip() for t in types.split(",") if t.strip()],
        dims=[_dim(d) for d in dims.split(",") if d.strip()],
        max_length=settings.embedding.max_length,
        gguf_dir=settings.home / "cache" / "gguf",
    )
    data = load_beir(data_dir, split)
    if max_queries is not None:
        data = _sample(data, max_queries)
    if max_docs is not None:
        data = _shrink(data, max_docs)
    # Each configuration's vectors are read several times (per dimension, and for the comparison).
    cache = EmbeddingCache(settings.eval.cache_dir or settings.home / "eval-cache")
    evaluator = Evaluator(hub=settings.hub, cache=cache, progress=sys.stderr.isatty())
    rows = quantization_report(spec, data, evaluator)
    if as_json:
        payload = {
            "model": str(model_dir),
            "data": data.name,
            "split": data.split,
            "queries": len(data.queries),
            "docs": len(data.doc_ids),
            "rows": [r.to_json() for r in rows],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        typer.echo(
            f"{data.name} ({data.split}): {len(data.queries):,} queries, {len(data.doc_ids):,} documents"
        )
        typer.echo(report_table(rows))


def _shrink(data: BeirDataset, count: int) -> BeirDataset:
    """``data`` with every judged document of its queries and seeded others, ``count`` in all (file order)."""
    import random

    from finesift.eval.datasets import BeirDataset

    judged = {d for judgements in data.qrels.values() for d in judgements}
    others = [d for d in data.doc_ids if d not in judged]
    keep = judged | set(random.Random(0).sample(others, max(0, min(len(others), count - len(judged)))))
    rows = [(d, t) for d, t in zip(data.doc_ids, data.doc_texts, strict=True) if d in keep]
    return BeirDataset(
        data.name, data.split, [d for d, _ in rows], [t for _, t in rows], data.queries, data.qrels
    )


def _dim(text: str) -> int | None:
    text = text.strip().lower()
    if text in ("full", "none"):
        return None
    if not text.isdigit():
        raise InvalidRequest(f"--dims takes integers or 'full', not {text!r}")
    return int(text)


def register(app: typer.Typer) -> None:
    app.add_typer(gguf_app, name="gguf", rich_help_panel="Models")
