"""``finesift synth`` against a scripted chat server: the two calls, faults, filter, split, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from finesift import load_embedder
from finesift.answer.llm import ChatClient
from finesift.errors import InvalidRequest
from finesift.eval.datasets import load_beir
from finesift.settings import KBSettings, LLMSettings
from finesift.testing.synth_chat import OFFTOPIC_QUERY, SynthChatState, synth_chat_server
from finesift.train import synth_prompts as prompts
from finesift.train.journal import Journal
from finesift.train.passages import Passage
from finesift.train.personas import bundled_personas
from finesift.train.synth import JOURNAL, SynthConfig, synthesize

SRC = str(Path(__file__).resolve().parents[3] / "src")
GOOD = [
    "The client retries a failed request three times with exponential backoff before it reports an error.",
    "Employees accrue two vacation days per month and may carry over at most ten days into the next year.",
    "The cache layer invalidates entries whenever the underlying database row changes.",
    "Expense reports are due by the fifth working day of the following month.",
]


def corpus(tmp_path: Path, texts: list[str]) -> Path:
    path = tmp_path / "in" / "corpus.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.dumps({"_id": f"d{n}", "title": "", "text": t}) for n, t in enumerate(texts)]
    path.write_text("\n".join(rows) + "\n", "utf-8")
    return path


def run_api(url: str, passages: list[Passage], out: Path, **config: object):
    settings = LLMSettings(url=url, model="scripted", timeout_s=1.0, max_retries=2)
    with ChatClient(settings) as chat:
        return synthesize(
            passages, embedder=load_embedder("fake"), complete=chat.complete,
            personas=bundled_personas(), out=out, config=SynthConfig(**{"min_cosine": 0.3, **config}),
        )  # fmt: skip


def passages_of(texts: list[str]) -> list[Passage]:
    return [Passage(f"d{n}", t) for n, t in enumerate(texts)]


def test_parse_replies() -> None:
    assert prompts.parse_reply('Sure:\n```json\n{"query": "x"}\n```') == {"query": "x"}
    with pytest.raises(prompts.ReplyError) as refused:
        prompts.parse_reply("I'm sorry, I cannot help with that.")
    assert refused.value.kind == "refused"
    with pytest.raises(prompts.ReplyError) as broken:
        prompts.parse_reply('{"query": "cut')
    assert broken.value.kind == "invalid_json"
    config = prompts.parse_config(
        '{"character": "2", "question_type": "Yes or No", "difficulty": "PhD"}', ["a", "b"]
    )
    assert config == prompts.QueryConfig("b", "yes_or_no", "phd")
    with pytest.raises(prompts.ReplyError, match="question_type 'poem'"):
        prompts.parse_config('{"character": "a", "question_type": "poem", "difficulty": "phd"}', ["a"])
    assert (
        prompts.detect_language("如何优化数据库的查询") == "zh" and prompts.detect_language("hello") == "en"
    )


def test_two_calls_follow_the_recipe(tmp_path: Path) -> None:
    texts = [*GOOD, "数据库优化：建立索引，避免全表扫描，热点数据放在缓存里。"]
    with synth_chat_server() as (url, state):
        report = run_api(url, passages_of(texts), tmp_path / "out")
    assert report.generated == 5 and report.dropped["llm_failure"] == 0
    configs = [r for r in state.requests if "Candidate characters" in r["messages"][-1]["content"]]
    queries = [r for r in state.requests if "Write one search query" in r["messages"][-1]["content"]]
    assert len(configs) == len(queries) == 5
    # Candidates are the five personas nearest to the passage under the embedder, best first.
    embedder, library = load_embedder("fake"), bundled_personas()
    sims = embedder.embed_documents(library) @ embedder.embed_documents([texts[0]])[0]
    expected = [library[i] for i in np.argsort(-sims, kind="stable")[:5]]
    first = next(r for r in configs if texts[0] in r["messages"][-1]["content"])
    lines = first["messages"][-1]["content"].splitlines()
    listed = [line[3:] for line in lines if line[:3] in {"1. ", "2. ", "3. ", "4. ", "5. "}]
    assert listed == expected
    second = next(r for r in queries if texts[0] in r["messages"][-1]["content"])["messages"][-1]["content"]
    assert f"Character: {expected[0]}" in second and "question type: acquire_knowledge" in second
    assert "difficulty: university" in second and "language: English" in second
    chinese = next(r for r in queries if texts[4] in r["messages"][-1]["content"])["messages"][-1]["content"]
    assert "language: Chinese" in chinese
    meta = [
        json.loads(line)["metadata"] for line in (tmp_path / "out" / "queries.jsonl").read_text().splitlines()
    ]
    assert {m["character"] for m in meta} <= set(library) and all(m["length"] > 0 for m in meta)


def test_faults_are_retried_then_counted_and_the_filter_applies(tmp_path: Path) -> None:
    texts = [
        *GOOD,
        "[malformed] Sessions are stored in Redis and expire after thirty minutes.",
        "[malformed-once] Passwords must be rotated every ninety days.",
        "[refuse] Badges must be worn visibly at all times inside the building.",
        "[offtopic] The pipeline runs unit tests and pushes the image to the registry.",
        "[slow] [429] The VPN must be used on public networks and hotel connections.",
        "[dup] Deploy with docker compose up on the staging host.",
        "[dup] Deploy with docker compose up on the production host after review.",
    ]
    with synth_chat_server(SynthChatState(stall_s=3.0)) as (url, state):
        report = run_api(url, passages_of(texts), tmp_path / "out", concurrency=3)
    assert report.generated == len(texts)
    assert report.dropped == {"invalid_json": 1, "llm_failure": 1, "low_cosine": 1, "duplicate": 1}
    assert report.kept == len(texts) - 4
    assert "after 3 attempts" in report.reasons["invalid_json"][0]["reason"]
    assert "refusal" in report.reasons["llm_failure"][0]["reason"]
    assert OFFTOPIC_QUERY in report.reasons["low_cosine"][0]["reason"]
    assert report.reasons["duplicate"][0]["key"] == "d10|0"
    assert state.max_in_flight <= 3
    dropped = [
        json.loads(line) for line in (tmp_path / "out" / "synth-dropped.jsonl").read_text().splitlines()
    ]
    assert sorted(d["kind"] for d in dropped) == ["duplicate", "invalid_json", "llm_failure", "low_cosine"]
    kept = [json.loads(line) for line in (tmp_path / "out" / "queries.jsonl").read_text().splitlines()]
    assert all(q["metadata"]["cosine"] >= 0.3 for q in kept)


def test_output_is_a_beir_folder_split_by_passage(tmp_path: Path) -> None:
    texts = [f"{t} Section {n}." for n in range(3) for t in GOOD]
    with synth_chat_server() as (url, _):
        report = run_api(url, passages_of(texts), tmp_path / "out", per_chunk=2, dev_fraction=0.25, seed=3)
    train, dev = load_beir(tmp_path / "out", "train"), load_beir(tmp_path / "out", "dev")
    assert len(train.doc_ids) == len(texts) and report.train + report.dev == report.kept
    train_docs = {d for judged in train.qrels.values() for d in judged}
    dev_docs = {d for judged in dev.qrels.values() for d in judged}
    assert dev_docs and not train_docs & dev_docs and len(dev_docs) == 3
    for qid, judged in {**train.qrels, **dev.qrels}.items():
        (doc,) = judged
        query = {**train.queries, **dev.queries}[qid]
        assert query.split()[0] in texts[int(doc[1:])]


def test_rerun_refilters_from_the_journal_without_asking_again(tmp_path: Path) -> None:
    with synth_chat_server() as (url, state):
        first = run_api(url, passages_of(GOOD), tmp_path / "out", min_cosine=0.3)
        asked = len(state.requests)
        strict = run_api(url, passages_of(GOOD), tmp_path / "out", min_cosine=0.99)
        assert len(state.requests) == asked
    assert first.kept == 4 and strict.kept == 0 and strict.dropped["low_cosine"] == 4
    assert strict.resumed == 4 and strict.ran == 0
    with pytest.raises(InvalidRequest, match="seed"):
        run_api("http://127.0.0.1:9/v1", passages_of(GOOD), tmp_path / "out", seed=7)
    other = tmp_path / "other"
    other.mkdir()
    (other / "corpus.jsonl").write_text("{}\n")
    with pytest.raises(InvalidRequest, match="holds no synth run"):
        run_api("http://127.0.0.1:9/v1", passages_of(GOOD), other)
    assert (other / "corpus.jsonl").read_text() == "{}\n"


def test_journal_drops_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    with Journal(path, {"seed": 0}) as journal:
        journal.append({"key": "a", "status": "ok"})
    with path.open("a") as fh:
        fh.write('{"key": "b", "sta')
    with Journal(path, {"seed": 0}) as journal:
        assert journal.done("a") and not journal.done("b")
        journal.append({"key": "c", "status": "ok"})
    lines = path.read_text().splitlines()
    assert [json.loads(line).get("key") for line in lines] == [None, "a", "c"]


def cli(out: Path, source: Path, url: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "finesift", "synth", "--corpus", str(source), "--embedding-model", "fake",
        "--llm-url", url, "--llm-model", "scripted", "--out", str(out), "--min-cosine", "0.3",
        "--concurrency", "2", "--no-progress", "--json", *extra,
    ]  # fmt: skip


def tree(root: Path, skip: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and skip not in p.parents
    }


@pytest.mark.slow
def test_resume_after_kill_writes_nothing_outside_out(tmp_path: Path) -> None:
    texts = [f"{t} Part {n}." for n in range(5) for t in GOOD]
    source = corpus(tmp_path, texts)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": SRC, "HOME": str(home), "FINESIFT_HOME": str(home / "fs"),
           "HF_HOME": str(home / "hf"), "XDG_CACHE_HOME": str(home / "cache")}  # fmt: skip
    out = tmp_path / "out"
    before = tree(tmp_path, out)
    with synth_chat_server(SynthChatState(delay_s=0.25)) as (url, state):
        proc = subprocess.Popen(cli(out, source, url), cwd=work, env=env, stdout=subprocess.DEVNULL)
        journal = out / JOURNAL
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if journal.exists() and journal.read_text().count("\n") >= 5:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done = journal.read_text().count("\n") - 1
        assert 4 <= done < len(texts)
        asked = len(state.requests)
        resumed = subprocess.run(cli(out, source, url), cwd=work, env=env, capture_output=True, check=True)
        rerun_requests = len(state.requests) - asked
        fresh = subprocess.run(
            cli(tmp_path / "fresh", source, url), cwd=work, env=env, capture_output=True, check=True
        )
    report = json.loads(resumed.stdout)
    assert report["resumed"] >= done and report["resumed"] + report["ran"] == len(texts)
    assert rerun_requests == 2 * report["ran"]
    for name in ("queries.jsonl", "corpus.jsonl", "qrels/train.tsv", "qrels/dev.tsv"):
        assert (out / name).read_text() == (tmp_path / "fresh" / name).read_text(), name
    assert json.loads(fresh.stdout)["kept"] == report["kept"] > 0
    after = {k: v for k, v in tree(tmp_path, out).items() if not k.startswith("fresh/")}
    assert after == before


def test_cli_on_a_knowledge_base(tmp_path: Path, monkeypatch, capsys) -> None:
    pytest.importorskip("lancedb")
    from finesift.cli.app import main
    from finesift.kb.knowledge_base import KnowledgeBase
    from finesift.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    for n, text in enumerate(GOOD):
        (docs / f"doc{n}.md").write_text(f"# Topic {n}\n\n{text}\n", "utf-8")
    home = tmp_path / "home"
    settings = Settings(home=home, embedding={"model": "fake"}, reranker={"model": "fake"})
    with KnowledgeBase.create("hb", settings=settings) as kb:
        kb.add([docs])
    before = tree(home, tmp_path / "none")
    with synth_chat_server() as (url, state):
        args = ["--home", str(home), "synth", "--kb", "hb", "--llm-url", url, "--llm-model", "m"]
        monkeypatch.setattr(sys, "argv", ["finesift", *args, "--out", str(tmp_path / "out"), "--json"])
        monkeypatch.setattr(sys, "argv", [*sys.argv, "--min-cosine", "0.3", "--no-progress"])
        with pytest.raises(SystemExit) as exited:
            main()
            raise SystemExit(0)
    out, err = capsys.readouterr()
    assert exited.value.code == 0, err
    report = json.loads(out)
    assert report["generated"] == len(GOOD) == report["passages"] and report["kept"] >= 3
    ids = [json.loads(line)["_id"] for line in (tmp_path / "out" / "corpus.jsonl").read_text().splitlines()]
    assert len(ids) == len(GOOD) and all(i.endswith("#0") for i in ids)
    assert all(r["model"] == "m" and r["temperature"] == 0.7 for r in state.requests)
    assert tree(home, tmp_path / "none") == before


def test_cli_errors_are_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from finesift.cli.app import main

    source = corpus(tmp_path, GOOD)
    for args, needle in [
        (["--corpus", str(source), "--kb", "x"], "exactly one of --kb"),
        (["--corpus", str(source), "--per-chunk", "0"], "--per-chunk"),
        (["--corpus", str(source), "--personas", str(tmp_path / "nope.txt")], "persona file"),
    ]:
        monkeypatch.setattr(sys, "argv", ["finesift", "synth", "--out", str(tmp_path / "o"), *args,
                                          "--llm-url", "http://127.0.0.1:9/v1", "--llm-model", "m",
                                          "--embedding-model", "fake"])  # fmt: skip
        with pytest.raises(SystemExit) as exited:
            main()
        err = capsys.readouterr().err
        assert exited.value.code == 2 and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_a_dead_endpoint_stops_the_run_and_a_rerun_asks_again(tmp_path: Path) -> None:
    from finesift.errors import BackendError

    texts = [f"{t} Part {n}." for n in range(3) for t in GOOD]
    dead = LLMSettings(url="http://127.0.0.1:9/v1", model="m", timeout_s=1.0, max_retries=0)
    with ChatClient(dead) as chat, pytest.raises(BackendError, match="failed the first 8 requests"):
        synthesize(
            passages_of(texts), embedder=load_embedder("fake"), complete=chat.complete,
            personas=bundled_personas(), out=tmp_path / "out", config=SynthConfig(concurrency=2),
        )  # fmt: skip
    lines = (tmp_path / "out" / JOURNAL).read_text().splitlines()[1:]
    assert 8 <= len(lines) < len(texts) and all(json.loads(line)["status"] == "llm_failure" for line in lines)
    with synth_chat_server() as (url, state):
        report = run_api(url, passages_of(texts), tmp_path / "out")
    assert report.ran == len(texts) and report.dropped["llm_failure"] == 0
    assert len(state.requests) == 2 * len(texts)


def test_passages_from_files_and_a_persona_file(tmp_path: Path) -> None:
    from finesift.train.passages import from_corpus
    from finesift.train.personas import read_personas

    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Leave\n\n" + GOOD[1] + "\n", "utf-8")
    (docs / "sub" / "b.txt").write_text(GOOD[0] + "\n\n" + GOOD[2] + "\n", "utf-8")
    (docs / "image.png").write_bytes(b"\x89PNG")
    kb = KBSettings(parse_workers=0)
    passages = from_corpus(docs, embedder=load_embedder("fake"), chunk_size=400, chunk_overlap=0, kb=kb)
    assert [p.id for p in passages] == ["a.md#0", "sub/b.txt#0"]
    assert passages[1].source == "sub/b.txt" and GOOD[2] in passages[1].text
    people = tmp_path / "personas.jsonl"
    people.write_text('{"persona": "a payroll clerk"}\n\n{"persona": "an HR manager"}\n', "utf-8")
    assert read_personas(people) == ["a payroll clerk", "an HR manager"]
    with synth_chat_server() as (url, state), ChatClient(LLMSettings(url=url, model="m")) as chat:
        synthesize(
            passages, embedder=load_embedder("fake"), complete=chat.complete, personas=read_personas(people),
            out=tmp_path / "out", config=SynthConfig(min_cosine=0.0),
        )  # fmt: skip
    prompt = state.requests[0]["messages"][-1]["content"]
    assert "a payroll clerk" in prompt and "an HR manager" in prompt and "3. " not in prompt
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "x"}\n', "utf-8")
    with pytest.raises(InvalidRequest, match=r"bad.jsonl:1: 'persona'"):
        read_personas(bad)
