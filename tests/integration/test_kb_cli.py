"""``finesift index / search / kb`` end to end: fake models (fast) and the tiny Qwen3 models (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_cli

pytest.importorskip("lancedb")


def make_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in ("Backups run nightly at 02:00.", "Restore a backup with the restore-db command."):
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    pdf.output(str(path))


def make_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Onboarding", level=1)
    document.add_paragraph("New engineers get a laptop and VPN access on day one.")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "VPN", "WireGuard"
    document.save(str(path))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "code").mkdir(parents=True)
    (root / "db.md").write_text(
        "# 数据库\n\n如何优化数据库：建立索引，避免全表扫描。\n\n# 缓存\n\n热点数据放在缓存。", "utf-8"
    )
    (root / "legacy.txt").write_bytes("连接池大小应根据并发量设置。".encode("gbk"))
    (root / "page.html").write_text("<h1>Deploy</h1><p>Deploy with docker compose up.</p>", "utf-8")
    (root / "code" / "user.py").write_text("def getUserName(user):\n    return user.name\n", "utf-8")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    make_pdf(root / "ops.pdf")
    make_docx(root / "onboarding.docx")
    return root


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path, *args: str):
    return run_cli(monkeypatch, capsys, "--home", str(home), *args)


def test_index_search_and_manage_with_fake_models(monkeypatch, capsys, tmp_path: Path, corpus: Path) -> None:
    home = tmp_path / "home"
    fake = ["--embedding-model", "fake", "--reranker-model", "fake"]
    code, out, _ = run(monkeypatch, capsys, home, "index", str(corpus), "--kb", "hb", *fake, "--json")
    first = json.loads(out)
    assert code == 0 and first["documents_added"] == 6 and first["documents_failed"] == 1
    assert first["chunks_embedded"] > 0 and "broken.pdf" in first["failures"][0]["source"]
    code, out, _ = run(monkeypatch, capsys, home, "index", str(corpus), "--kb", "hb", "--json")
    assert json.loads(out)["chunks_embedded"] == 0 and json.loads(out)["documents_unchanged"] == 6

    code, out, _ = run(monkeypatch, capsys, home, "search", "如何优化数据库", "--kb", "hb", "--json")
    hits = json.loads(out)["hits"]
    assert code == 0 and hits[0]["source"].endswith("db.md")
    assert set(hits[0]) == {"doc_id", "source", "text", "score", "start", "end", "page"}
    code, out, _ = run(
        monkeypatch,
        capsys,
        home,
        "search",
        "restore backup",
        "--kb",
        "hb",
        "--json",
        "--type",
        "pdf",
        "--mode",
        "bm25",
        "--no-rerank",
    )
    [pdf_hit, *_] = json.loads(out)["hits"]
    assert pdf_hit["source"].endswith("ops.pdf") and pdf_hit["page"] == 2
    code, out, _ = run(
        monkeypatch, capsys, home, "search", "user", "--kb", "hb", "--source", str(corpus / "code")
    )
    assert code == 0 and "user.py" in out and "db.md" not in out

    code, out, _ = run(monkeypatch, capsys, home, "kb", "list")
    assert out.split() == ["hb"]
    code, out, _ = run(monkeypatch, capsys, home, "kb", "info", "hb", "--json")
    info = json.loads(out)
    assert info["documents"] == 6 and info["embedding_model"] == "fake" and info["dim"] == 64
    doc_id = next(d["doc_id"] for d in info["document_list"] if d["source"].endswith("page.html"))
    code, out, _ = run(monkeypatch, capsys, home, "kb", "delete-doc", "hb", doc_id)
    assert code == 0 and "deleted 1" in out
    code, out, _ = run(
        monkeypatch, capsys, home, "search", "docker compose", "--kb", "hb", "--json", "--mode", "bm25"
    )
    assert all(not h["source"].endswith("page.html") for h in json.loads(out)["hits"])
    code, _, _ = run(monkeypatch, capsys, home, "kb", "drop", "hb")
    assert code != 0  # no --yes and no terminal: aborted
    code, out, _ = run(monkeypatch, capsys, home, "kb", "drop", "hb", "--yes")
    assert code == 0 and run(monkeypatch, capsys, home, "kb", "list")[1].startswith("no knowledge bases")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["index", "/nonexistent/path", "--kb", "x"], 2, "no such file or folder"),
        (["search", "  ", "--kb", "x"], 2, "query is empty"),
        (["search", "q", "--kb", "nope"], 4, "no knowledge base named 'nope'"),
        (["search", "q", "--kb", "../../etc"], 2, "invalid knowledge base name"),
        (["kb", "info", "nope"], 4, "no knowledge base named"),
        (["search", "q", "--kb", "x", "--mode", "fuzzy"], 2, "invalid option"),
    ],
)
def test_bad_input_gives_one_line(monkeypatch, capsys, tmp_path: Path, args, code, message) -> None:
    got, _, err = run(monkeypatch, capsys, tmp_path, *args)
    assert got == code
    assert err.startswith("error:") and message in err and err.count("\n") == 1


def test_conflicting_choice_on_existing_kb(monkeypatch, capsys, tmp_path: Path, corpus: Path) -> None:
    run(
        monkeypatch,
        capsys,
        tmp_path,
        "index",
        str(corpus / "db.md"),
        "--kb",
        "hb",
        "--embedding-model",
        "fake",
    )
    code, _, err = run(
        monkeypatch, capsys, tmp_path, "index", str(corpus), "--kb", "hb", "--embedding-model", "fake:128"
    )
    assert code == 7 and "was created with --embedding-model 'fake'" in err


@pytest.mark.slow
def test_end_to_end_with_tiny_qwen3_models(
    monkeypatch, capsys, tmp_path: Path, corpus: Path, tiny_embedding_model: Path, tiny_reranker_model: Path
) -> None:
    home = tmp_path / "home"
    models = [
        "--embedding-model",
        str(tiny_embedding_model),
        "--reranker-model",
        str(tiny_reranker_model),
        "--dim",
        "32",
        "--device",
        "cpu",
        "--dtype",
        "float32",
    ]
    code, out, err = run(monkeypatch, capsys, home, "index", str(corpus), "--kb", "tiny", *models, "--json")
    assert code == 0, err
    assert json.loads(out)["documents_added"] == 6
    code, out, _ = run(
        monkeypatch,
        capsys,
        home,
        "index",
        str(corpus),
        "--kb",
        "tiny",
        "--json",
        "--device",
        "cpu",
        "--dtype",
        "float32",
    )
    assert json.loads(out)["chunks_embedded"] == 0
    code, out, _ = run(
        monkeypatch,
        capsys,
        home,
        "search",
        "如何优化数据库",
        "--kb",
        "tiny",
        "--json",
        "-k",
        "3",
        "--device",
        "cpu",
        "--dtype",
        "float32",
    )
    hits = json.loads(out)["hits"]
    assert code == 0 and 1 <= len(hits) <= 3 and all(0.0 <= h["score"] <= 1.0 for h in hits)
    code, out, _ = run(monkeypatch, capsys, home, "kb", "info", "tiny", "--json")
    fingerprint = json.loads(out)["fingerprint"]
    assert fingerprint["dim"] == 32 and fingerprint["pooling"] == "last_token" and fingerprint["tokenizer"]
