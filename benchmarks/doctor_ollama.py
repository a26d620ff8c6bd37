"""The doctor's Ollama rows against finesift's Ollama protocol server, on tiny random Qwen3 models.

Prints the `finesift doctor` table (transformers, openai, ollama) and then the Ollama reranker row
under each Ollama-side fault the doctor names: swapped yes/no, a chat-template prompt, a context
smaller than the long probe pair. About a minute on 2 CPU cores; nothing leaves 127.0.0.1.

    PYTHONPATH=src python benchmarks/doctor_ollama.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from typer.testing import CliRunner

from finesift.cli.app import app
from finesift.doctor.checks import RerankChecker
from finesift.doctor.diagnose import Thresholds
from finesift.doctor.report import DoctorReport
from finesift.embedding.transformers import TransformersEmbedder
from finesift.rerank.base import Reranker
from finesift.rerank.ollama import OllamaReranker
from finesift.rerank.transformers import TransformersReranker
from finesift.settings import RerankSettings
from finesift.testing.http import Faults, ServerState, protocol_server
from finesift.testing.models import build_model
from finesift.testing.ollama import LogprobModel, build_ollama_reranker

SERVED = "dengcao/Qwen3-Reranker-0.6B:F16"


def chat_template_form(prompt: str) -> str:
    return prompt.replace("\n<Query>: ", "\n\n<Query>: ").replace("\n<Document>: ", "\n\n<Document>: ")


FAULTS = {
    "ollama": {},
    "ollama+swapped": {"swap_yes_no": True},
    "ollama+chat-template": {"rewrite_prompt": chat_template_form},
    "ollama+ctx200": {"context_cap": 200},
}


def main() -> None:
    root = Path(tempfile.mkdtemp())
    emb = build_model(root / "tiny-embedding", "embedding")
    rr = build_ollama_reranker(root / "tiny-ollama-reranker")
    generator = LogprobModel(rr)
    reference = TransformersReranker(rr, device="cpu", dtype="float32")
    state = ServerState(
        embedder=TransformersEmbedder(emb, device="cpu", dtype="float32"),
        reranker=reference,
        generator=generator,
    )
    models = ["--embedding-model", str(emb), "--reranker-model", str(rr)]
    args = [*models, "--backends", "transformers,openai,ollama", "--device", "cpu"]
    with protocol_server(state) as (url, _):
        urls = ["--url", f"openai={url}", "--url", f"ollama={url}"]
        result = CliRunner().invoke(app, ["--home", str(root / "home"), "doctor", *args, *urls])
    print(result.output, f"exit status {result.exit_code}\n", sep="")
    checker = RerankChecker(Reranker(reference), Thresholds())
    rows = []
    for label, faults in FAULTS.items():
        with protocol_server(ServerState(generator=generator, faults=Faults(**faults))) as (url, _):
            backend = OllamaReranker(RerankSettings(model=SERVED, backend="ollama", url=url))
            backend.check_server()
            rows.append(checker.check(label, Reranker(backend)))
    print(DoctorReport(rows, "transformers float32", {}).table())


if __name__ == "__main__":
    main()
