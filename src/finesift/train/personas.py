"""The persona library: a small bundled list or the user's file; candidates nearest to each passage."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

from finesift.errors import InvalidRequest

#: Candidates offered to the configuration call per passage (the report uses five).
CANDIDATES = 5


def bundled_personas() -> list[str]:
    """The personas shipped with finesift (``finesift/train/personas.txt``), one per line."""
    text = resources.files("finesift.train").joinpath("personas.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_personas(path: Path) -> list[str]:
    """Personas from a file: one per line, or JSONL objects with a ``persona`` (Persona Hub) field."""
    if not path.is_file():
        raise InvalidRequest(f"persona file {str(path)!r} does not exist")
    personas: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                value = json.loads(line).get("persona")
            except (ValueError, AttributeError) as exc:
                raise InvalidRequest(f"{path}:{n}: not a JSON object with a 'persona' field") from exc
            if not isinstance(value, str) or not value.strip():
                raise InvalidRequest(f"{path}:{n}: 'persona' must be non-empty text")
            line = value.strip()
        personas.append(" ".join(line.split()))
    if not personas:
        raise InvalidRequest(f"persona file {str(path)!r} has no personas")
    return personas


def nearest_personas(passages: np.ndarray, personas: np.ndarray, k: int = CANDIDATES) -> list[list[int]]:
    """Indices of the ``k`` personas most similar to each passage, best first.

    ``passages`` (n, d) and ``personas`` (p, d) are L2-normalised; ties keep library order.
    """
    sims = passages @ personas.T
    k = min(k, personas.shape[0])
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return [[int(i) for i in row] for row in order]
