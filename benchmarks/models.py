"""Random-weight Qwen3 checkpoints of a true shape (default: the official 0.6B configs), cached on disk.

Weights are random, so scores mean nothing; speed, memory and dtype fidelity do. The official
tokenizer files are copied next to the weights; the embedding directory also gets the
sentence-transformers modules (last-token pooling, normalize) from the shared model card files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

EMBEDDING_DIR = "Qwen3-Embedding-0.6B"
RERANKER_DIR = "Qwen3-Reranker-0.6B"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")
ST_FILES = ("modules.json", "config_sentence_transformers.json", "1_Pooling/config.json")


def _config_digest(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


#: Random initialisations: "spread" (std 0.08, as the tests' tiny models) or "hf" (transformers' own).
INITS = ("spread", "hf")


def ensure_model(
    source: Path,
    target: Path,
    kind: str,
    *,
    config_path: Path | None = None,
    init: str = "spread",
    layers: int = 0,
) -> Path:
    """Build ``target`` from ``source``'s config and tokenizer unless an identical build exists.

    ``layers`` keeps the first N decoder layers (a quick rehearsal on a CPU); the width and vocabulary stay.
    """
    config: dict[str, Any] = json.loads((config_path or source / "config.json").read_text(encoding="utf-8"))
    if layers:
        config["num_hidden_layers"] = layers
        if config.get("layer_types"):
            config["layer_types"] = config["layer_types"][:layers]
    stamp = target / ".finesift-bench-config"
    digest = _config_digest(config) + ("" if init == "spread" else f"\ninit={init}")
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == digest:
        return target
    from finesift.testing.models import build_model

    if target.exists():
        shutil.rmtree(target)
    build_model(target, kind, config=config, dtype="bfloat16", spread=init == "spread")  # type: ignore[arg-type]
    for name in TOKENIZER_FILES:
        shutil.copyfile(source / name, target / name)
    if kind == "embedding":
        for name in ST_FILES:
            if (source / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / name, target / name)
        (target / "2_Normalize").mkdir(exist_ok=True)
    stamp.write_text(digest, encoding="utf-8")
    return target


def ensure_models(
    shared: Path,
    cache: Path,
    *,
    embedding_config: Path | None,
    reranker_config: Path | None,
    init: str = "spread",
    layers: int = 0,
) -> tuple[Path, Path]:
    """(embedding dir, reranker dir) of true-shape random models built from ``shared/models``."""
    root = shared / "models" / "qwen3-0.6b"
    if init != "spread":
        cache = cache / f"init-{init}"
    if layers:
        cache = cache / f"{layers}-layers"
    emb = ensure_model(
        root / EMBEDDING_DIR,
        cache / EMBEDDING_DIR,
        "embedding",
        config_path=embedding_config,
        init=init,
        layers=layers,
    )
    rer = ensure_model(
        root / RERANKER_DIR,
        cache / RERANKER_DIR,
        "reranker",
        config_path=reranker_config,
        init=init,
        layers=layers,
    )
    return emb, rer


def model_shape(path: Path) -> dict[str, int]:
    """The numbers the FLOP count needs, from a model's config.json."""
    cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    heads, kv_heads = int(cfg["num_attention_heads"]), int(cfg["num_key_value_heads"])
    head_dim = int(cfg.get("head_dim") or cfg["hidden_size"] // heads)
    return {
        "layers": int(cfg["num_hidden_layers"]),
        "hidden": int(cfg["hidden_size"]),
        "intermediate": int(cfg["intermediate_size"]),
        "heads": heads,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
    }


def main(argv: list[str] | None = None) -> None:
    """Build (or find) the two models and print their directories, one per line."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--shared", type=Path, required=True)
    p.add_argument("--models-dir", type=Path, required=True)
    p.add_argument("--init", choices=INITS, default="spread")
    p.add_argument("--layers", type=int, default=0)
    args = p.parse_args(argv)
    paths = ensure_models(
        args.shared,
        args.models_dir,
        embedding_config=None,
        reranker_config=None,
        init=args.init,
        layers=args.layers,
    )
    print("\n".join(str(path) for path in paths))


if __name__ == "__main__":
    main()
