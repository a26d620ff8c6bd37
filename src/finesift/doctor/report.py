"""The doctor's result: one row per backend and role, printed as a table or JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from finesift.doctor.compare import Metrics
from finesift.doctor.diagnose import CATALOGUE

Status = Literal["ok", "fail", "skip"]
Role = Literal["embedding", "reranker"]


@dataclass
class Row:
    """One backend in one role: its status, numbers, and the diagnosis when it fails."""

    backend: str
    role: Role
    status: Status
    metrics: Metrics = field(default_factory=Metrics)
    diagnosis: str | None = None
    message: str | None = None

    def explain(self) -> str:
        """One line: the diagnosis with its fix, the error, or why the row was skipped."""
        if self.status == "skip":
            return f"{self.backend} ({self.role}) skipped: {self.message}"
        if self.diagnosis is None:
            extra = f" ({self.message})" if self.message else ""
            return f"{self.backend} ({self.role}) agrees with the reference{extra}"
        entry = CATALOGUE[self.diagnosis]
        extra = f" ({self.message})" if self.message else ""
        return f"{self.backend} ({self.role}): {entry.title}{extra}. Fix: {entry.fix}"


@dataclass
class DoctorReport:
    """All rows; ``ok`` when no row failed (skipped rows do not fail)."""

    rows: list[Row]
    reference: str
    model: dict[str, str | None]

    @property
    def ok(self) -> bool:
        return all(r.status != "fail" for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.status == "fail"]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN becomes null)."""
        return _clean(
            {
                "ok": self.ok,
                "reference": self.reference,
                "model": self.model,
                "rows": [asdict(r) for r in self.rows],
            }
        )

    def table(self) -> str:
        """The human report: a table, then one line per failing or skipped row."""
        head = ("backend", "role", "status", "cos min", "cos mean", "max |Δ|", "rank agree", "tok/s")
        body = [(r.backend, r.role, r.status.upper(), *_numbers(r.metrics)) for r in self.rows]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
        lines = [
            "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
            for line in (head, *body)
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = [r.explain() for r in self.rows if r.status != "ok" or r.message]
        verdict = (
            "all backends agree with the reference" if self.ok else f"{len(self.failures)} row(s) failed"
        )
        return "\n".join([f"reference: {self.reference}", *lines, *notes, verdict])


def _numbers(m: Metrics) -> tuple[str, ...]:
    return (
        _fmt(m.cos_min, 4),
        _fmt(m.cos_mean, 4),
        _fmt(m.max_delta, 4),
        _fmt(m.agreement, 3),
        _fmt(m.tokens_per_s, 0),
    )


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}f}"


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
