"""The model card's reranking protocol through mteb, against a plain re-implementation; resume and caching."""

from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("mteb") is None:
    pytest.skip("mteb is not installed (the mteb extra, not in [all,dev])", allow_module_level=True)

from finesift import load_embedder, load_reranker
from finesift.errors import InvalidRequest, NotFound
from finesift.eval.models import minilm_path
from finesift.eval.mteb import MTEBEncoder, MTEBReranker
from finesift.eval.mteb_run import MTEBRun
from finesift.eval.mteb_tasks import benchmark_tasks, resolve_tasks
from finesift.rerank.base import Reranker

TOPICS = ["river", "engine", "violin", "glacier", "orchard", "satellite", "bakery", "volcano"]
VERBS = ["describes", "explains", "questions", "celebrates", "measures"]
# The instruction the rule makes from a BEIR folder task's description (the folder is named "protocol").
INSTRUCTION = "Given a query, retrieve relevant documents from the local BEIR folder protocol"


def write_beir(root: Path, docs: int = 110) -> Path:
    """A BEIR folder with more documents than the first stage keeps (100), and graded judgements."""
    rng = random.Random(7)
    folder = root / "protocol"
    (folder / "qrels").mkdir(parents=True)
    corpus = [
        {
            "_id": f"d{i}",
            "title": "",
            "text": f"This note {rng.choice(VERBS)} the {TOPICS[i % 8]} number {i}.",
        }
        for i in range(docs)
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus), "utf-8")
    queries = [
        {"_id": f"q{t}", "text": f"which note is about the {topic}?"} for t, topic in enumerate(TOPICS[:3])
    ]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries), "utf-8")
    rows = ["query-id\tcorpus-id\tscore"]
    rows += [f"q{t}\td{t + 8 * k}\t{2 if k == 0 else 1}" for t in range(3) for k in range(3)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", "utf-8")
    return folder


def plain_protocol(folder: Path, reranker: Reranker) -> dict[int, float]:
    """Top 100 by MiniLM cosine, reranked by P(yes); mean nDCG@10 and @100 (trec_eval's, linear gain)."""
    from sentence_transformers import SentenceTransformer

    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text("utf-8").splitlines()]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text("utf-8").splitlines()]
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text("utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
    st = SentenceTransformer(str(minilm_path()), device="cpu")
    doc_vectors = st.encode([d["text"] for d in corpus], normalize_embeddings=True)
    total = {10: 0.0, 100: 0.0}
    for query in queries:
        cosine = doc_vectors @ st.encode([query["text"]], normalize_embeddings=True)[0]
        top = [corpus[i] for i in np.argsort(-cosine, kind="stable")[:100]]
        scores = reranker.score(query["text"], [d["text"] for d in top], instruction=INSTRUCTION)
        by_id = sorted(range(len(top)), key=lambda i: top[i]["_id"], reverse=True)  # trec_eval's tie order
        ranked = [top[i]["_id"] for i in sorted(by_id, key=lambda i: -scores[i])]
        judged = qrels[query["_id"]]
        for k in total:
            dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
            ideal = sorted(judged.values(), reverse=True)[:k]
            total[k] += dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return {k: v / len(queries) for k, v in total.items()}


@pytest.mark.slow  # MiniLM twice and 600 reranked pairs; CI's newest/mteb runs it
def test_reranking_protocol_equals_the_plain_reimplementation(
    tmp_path: Path, tiny_reranker_model: Path, tiny_reranker: Reranker
) -> None:
    """P(yes) comes from the same reranker on both sides: the tiny model's random weights give near-tied
    scores, so float noise between implementations (batch padding) would reorder the deep ranks that
    nDCG@100 sees; the reranker's parity with the model card is tested in tests/unit/rerank."""
    folder = write_beir(tmp_path)
    run = MTEBRun(output=tmp_path / "out", first_stage_dir=tmp_path / "first")
    first = MTEBEncoder(load_embedder(str(minilm_path()), device="cpu"))
    second = MTEBReranker(load_reranker(str(tiny_reranker_model), dtype="float32", device="cpu"))
    [outcome] = run.run_reranker(second, first, resolve_tasks([str(folder)], None))
    assert outcome.instruction == {"query": INSTRUCTION, "document": None, "source": "task-description"}
    assert outcome.main_score is not None
    plain = plain_protocol(folder, tiny_reranker)
    assert plain[100] > 0.1  # nDCG@100 orders all 100 candidates: the whole reranked list must agree
    mteb_scores = json.loads(Path(outcome.result_file).read_text("utf-8"))["scores"]["test"][0]
    # mteb rounds its scores to 5 decimals
    assert outcome.main_score == pytest.approx(plain[10], abs=5e-6)
    assert mteb_scores["ndcg_at_100"] == pytest.approx(plain[100], abs=5e-6)
    record = json.loads(run.record_path(outcome.result_file).read_text("utf-8"))
    assert record["instruction"]["query"] == INSTRUCTION and record["first_stage"]["top_k"] == 100


def test_first_stage_is_cached_and_reused_and_finished_tasks_are_skipped(tmp_path: Path) -> None:
    folder = write_beir(tmp_path, docs=30)
    run = MTEBRun(output=tmp_path / "out", first_stage_dir=tmp_path / "first")
    first = MTEBEncoder(load_embedder("fake"))
    a = run.run_reranker(MTEBReranker(load_reranker("fake")), first, resolve_tasks([str(folder)], None))[0]
    assert (a.status, a.first_stage and a.first_stage["cached"]) == ("ran", False)
    files = list((tmp_path / "first").glob("*/protocol_predictions.json"))
    assert len(files) == 1
    other = MTEBReranker(load_reranker("fake"), name="another-reranker")
    b = run.run_reranker(other, first, resolve_tasks([str(folder)], None))[0]
    assert (b.status, b.first_stage and b.first_stage["cached"]) == ("ran", True)  # reused across rerankers
    again = run.run_reranker(other, first, resolve_tasks([str(folder)], None))[0]
    assert again.status == "cached" and again.main_score == b.main_score
    emb = run.run_embedder(first, resolve_tasks([str(folder)], None))[0]
    assert emb.status == "ran"
    assert run.run_embedder(first, resolve_tasks([str(folder)], None))[0].status == "cached"


def test_unknown_names_and_offline_data_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidRequest, match=r"unknown mteb task 'SciFactt'.*SciFact"):
        resolve_tasks(["SciFactt"], None)
    with pytest.raises(InvalidRequest, match="unknown benchmark 'MTEB\\(nope\\)'"):
        resolve_tasks([], "MTEB(nope)")
    from finesift.eval import mteb_tasks

    # a finesift task set (the real module's sets need the hub): benchmark names look there first
    monkeypatch.setattr(mteb_tasks, "task_sets", lambda: {"tiny-set": ("NFCorpus", "ArguAna")})
    assert [t.metadata.name for t in resolve_tasks(["ArguAna"], "tiny-set")] == ["ArguAna", "NFCorpus"]
    assert "ArguAna" in benchmark_tasks("MTEB(eng, v2)")
    [task] = resolve_tasks([str(write_beir(tmp_path, docs=10))], None)

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'mteb/nfcorpus' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(type(task), "load_data", offline)
    run = MTEBRun(output=tmp_path / "out", first_stage_dir=tmp_path / "first")
    with pytest.raises(NotFound, match=r"HF_DATASETS_CACHE.*HF_DATASETS_OFFLINE=1"):
        run.run_embedder(MTEBEncoder(load_embedder("fake")), [task])


def test_a_beir_folder_task_is_versioned_by_its_corpus(tmp_path: Path) -> None:
    """One builder for both faces; its revision (the corpus hash) is what lets a resumed run redo a
    folder whose documents changed (mteb keeps a result only for the same dataset revision)."""
    from finesift.eval.datasets import load_beir
    from finesift.eval.mteb_local import beir_task

    folder = write_beir(tmp_path, docs=10)
    task = beir_task(folder)
    assert task.metadata.name == "protocol"
    assert task.metadata.revision == load_beir(folder, "test").corpus_hash()
    [cli_task] = resolve_tasks([str(folder)], None)
    assert cli_task.metadata.dataset == task.metadata.dataset
    with (folder / "corpus.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('\n{"_id": "d99", "title": "", "text": "a new note"}')
    assert beir_task(folder).metadata.revision != task.metadata.revision
