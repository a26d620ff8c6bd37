"""The quantization report: GGUF types x Matryoshka dims against the transformers fp32 reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from finesift.eval.quantization import QuantRow, _fidelity, report_table

DOCS = [
    "Beijing is the capital of China.",
    "Paris is the capital of France.",
    "def add(a, b):\n    return a + b",
    "Bananas are yellow and rich in potassium.",
    "The mitochondria is the powerhouse of the cell.",
    "向量检索用嵌入向量找到语义相近的文本。",
    "sorted(x) returns a new sorted list.",
    "Gravity bends light near massive objects.",
]
QUERIES = {"q1": ("capital of China", "d0"), "q2": ("python add two numbers", "d2"), "q3": ("向量检索", "d5")}


def _beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = [
        json.dumps({"_id": f"d{i}", "title": "", "text": t}, ensure_ascii=False) for i, t in enumerate(DOCS)
    ]
    (root / "corpus.jsonl").write_text("\n".join(corpus) + "\n", encoding="utf-8")
    queries = [json.dumps({"_id": q, "text": t}, ensure_ascii=False) for q, (t, _) in QUERIES.items()]
    (root / "queries.jsonl").write_text("\n".join(queries) + "\n", encoding="utf-8")
    qrels = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t1" for q, (_, d) in QUERIES.items())]
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    return root


def test_fidelity_is_cosine_and_the_largest_similarity_change() -> None:
    rng = np.random.default_rng(0)
    ref_q, ref_d = (m / np.linalg.norm(m, axis=1, keepdims=True) for m in rng.normal(size=(2, 5, 8)))
    assert _fidelity(ref_q, ref_d, ref_q, ref_d) == pytest.approx((1.0, 1.0, 0.0))
    moved = ref_d.copy()
    moved[3] = -moved[3]  # one document flipped: cosine -1 there, its similarities change sign
    mean, low, delta = _fidelity(ref_q, moved, ref_q, ref_d)
    assert low == pytest.approx(-1.0) and mean == pytest.approx((10 - 2) / 10)
    assert delta == pytest.approx(float(np.max(np.abs(2 * ref_q @ ref_d[3]))))


def test_table_has_one_line_per_row() -> None:
    row = QuantRow("q8_0", 256, 0.5, 0.99, 0.98, 0.01, 1 << 20, 600 << 20, 1234.0)
    text = report_table([row, QuantRow("fp32", 1024, 0.51, 1.0, 1.0, 0.0, 4 << 20, 2400 << 20, None)])
    lines = text.splitlines()
    assert len(lines) == 4 and "nDCG@10" in lines[0] and "max |Δ|" in lines[0]
    assert lines[2].split() == [
        "q8_0",
        "256",
        "0.5000",
        "0.99000",
        "0.98000",
        "0.01000",
        "1.00",
        "600.0",
        "1,234",
    ]
    assert lines[3].split()[-1] == "-"


@pytest.mark.slow
def test_report_over_types_and_dims_on_a_tiny_model(tiny_embedding_model, tmp_path) -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gguf")
    from typer.testing import CliRunner

    from finesift.cli.app import app

    data = _beir(tmp_path / "beir")
    args = ["--home", str(tmp_path / "home"), "gguf", "report", str(tiny_embedding_model), str(data)]
    args += ["--types", "f32,q8_0,q4_0", "--dims", "full,32", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.splitlines()[-1])
    rows = {(r["file_type"], r["dim"]): r for r in payload["rows"]}
    assert list(rows) == [(t, d) for t in ("fp32", "f32", "q8_0", "q4_0") for d in (64, 32)]
    assert payload["docs"] == len(DOCS) and payload["queries"] == len(QUERIES)
    for (file_type, dim), row in rows.items():
        assert row["vector_bytes"] == len(DOCS) * dim * 4
        if file_type == "fp32":
            assert (row["cos_mean"], row["max_delta"]) == (1.0, 0.0)
    # llama.cpp in f32 is the reference up to rounding; fewer bits move the vectors further
    assert rows[("f32", 64)]["cos_min"] > 0.999 and rows[("f32", 64)]["max_delta"] < 0.01
    assert rows[("f32", 64)]["ndcg_at_10"] == pytest.approx(rows[("fp32", 64)]["ndcg_at_10"], abs=1e-6)
    assert rows[("q4_0", 64)]["cos_mean"] < rows[("q8_0", 64)]["cos_mean"] < rows[("f32", 64)]["cos_mean"]
    assert rows[("q4_0", 64)]["max_delta"] > rows[("f32", 64)]["max_delta"]
    assert (
        rows[("q4_0", 64)]["model_bytes"]
        < rows[("q8_0", 64)]["model_bytes"]
        < rows[("f32", 64)]["model_bytes"]
    )
    assert all(r["tokens_per_s"] and r["tokens_per_s"] > 0 for r in payload["rows"])

    # as a table, on a smaller corpus: the judged documents stay, seeded others fill up to --max-docs
    table = CliRunner().invoke(app, [*args[:-1], "--max-docs", "5"])
    assert table.exit_code == 0, table.output
    assert "beir (test): 3 queries, 5 documents" in table.output
    assert sum(line.startswith(("fp32", "f32", "q8_0", "q4_0")) for line in table.output.splitlines()) == 8
