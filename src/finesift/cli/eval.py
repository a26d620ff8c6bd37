"""``finesift eval``: measure retrieval quality on BEIR-format data (dense, bm25, hybrid, rerank)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from finesift.cli.common import settings_of, with_models, with_role
from finesift.cli.options import both_models, setting
from finesift.errors import InvalidRequest
from finesift.eval.config import MODES, EvalConfig, Mode
from finesift.settings import Dtype, Settings

if TYPE_CHECKING:
    from finesift.eval.cache import EmbeddingCache
    from finesift.eval.datasets import BeirDataset

ModeOpt = Annotated[str, typer.Option(help=f"Pipeline: {' | '.join(MODES)}.")]
EmbModelOpt = Annotated[str | None, setting("--embedding-model", path="embedding.model")]
EmbBackendOpt = Annotated[str | None, setting("--embedding-backend", path="embedding.backend")]
RerankModelOpt = Annotated[str | None, setting("--reranker-model", path="reranker.model")]
RerankBackendOpt = Annotated[str | None, setting("--reranker-backend", path="reranker.backend")]
CompareOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--compare",
        help="Extra configuration as key=value,...; '|' lists alternatives "
        "(e.g. 'dim=256|512|1024'). Repeatable; prints one table.",
    ),
]


def eval_command(
    ctx: typer.Context,
    data_dir: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")
    ],
    split: Annotated[str, typer.Option(help="Which qrels/<split>.tsv to evaluate.")] = "test",
    mode: ModeOpt = "dense",
    embedding_model: EmbModelOpt = None,
    embedding_backend: EmbBackendOpt = None,
    reranker_model: RerankModelOpt = None,
    reranker_backend: RerankBackendOpt = None,
    rerank_top: Annotated[int | None, setting(path="eval.rerank_top")] = None,
    dim: Annotated[int | None, typer.Option(help="Matryoshka dimension (default: full).")] = None,
    instruction: Annotated[str | None, typer.Option(help="Query instruction (name or sentence).")] = None,
    dtype: Annotated[Dtype | None, both_models(name="dtype")] = None,
    device: Annotated[str | None, both_models(name="device")] = None,
    max_length: Annotated[int | None, setting(path="embedding.max_length")] = None,
    gguf_type: Annotated[str | None, both_models(name="gguf_type")] = None,
    max_queries: Annotated[int | None, typer.Option(help="Evaluate a seeded sample of N queries.")] = None,
    cache: Annotated[bool | None, setting("--cache/--no-cache", path="eval.cache")] = None,
    compare: CompareOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bars (tty).")
    ] = None,
) -> None:
    """Evaluate retrieval on BEIR-format data: nDCG@10, Recall@100, MRR@10, MAP@100 (trec_eval)."""
    from finesift.eval.compare import expand, summary, table
    from finesift.eval.datasets import load_beir
    from finesift.eval.runner import Evaluator

    settings = with_models(
        settings_of(ctx),
        embedding={"model": embedding_model, "backend": embedding_backend, "max_length": max_length},
        reranker={"model": reranker_model, "backend": reranker_backend},
        dtype=dtype,
        device=device,
        gguf_type=gguf_type,
    )
    settings = with_role(settings, "eval", rerank_top=rerank_top, cache=cache)
    base = EvalConfig(
        mode=cast(Mode, mode),
        embedding=settings.embedding,
        reranker=settings.reranker,
        dim=dim,
        instruction=instruction,
        rerank_top=settings.eval.rerank_top,
    )
    configs = [base, *expand(base, compare)] if compare else [base]
    data = load_beir(data_dir, split)
    if max_queries is not None:
        data = _sample(data, max_queries)
    evaluator = Evaluator(
        hub=settings.hub,
        cache=_cache(settings),
        encode_chunk=settings.eval.encode_chunk,
        progress=sys.stderr.isatty() if progress is None else progress,
    )
    results = evaluator.run_all(data, configs)
    if as_json:
        payload = results[0].to_json() if len(results) == 1 else {"results": [r.to_json() for r in results]}
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        typer.echo(summary(results[0]) if len(results) == 1 else table(results))


def _cache(settings: Settings) -> EmbeddingCache:
    from finesift.eval.cache import EmbeddingCache

    if not settings.eval.cache:
        return EmbeddingCache(None)
    return EmbeddingCache(settings.eval.cache_dir or settings.home / "eval-cache")


def _sample(data: BeirDataset, count: int) -> BeirDataset:
    import random

    if count < 1:
        raise InvalidRequest(f"--max-queries must be positive, not {count}")
    qids = sorted(data.queries)
    if count < len(qids):
        qids = sorted(random.Random(0).sample(qids, count))
    return data.subset(qids)


def register(app: typer.Typer) -> None:
    app.command("eval", rich_help_panel="Evaluation")(eval_command)
