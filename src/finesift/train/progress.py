"""What a training run shows while it works: a bar on a terminal, a progress line now and then off one.

Off a terminal (a log file, CI, ``nohup``) a bar is unreadable, and none at all leaves an empty log for
the whole run; :class:`Progress` then writes a line on the first and last update and at most every
``every_s`` seconds between: ``train: step 10/240 (4 %), loss 0.4213, 12.3 examples/s, ETA 3m05s``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

EVERY_S = 30.0


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Steps (or texts) done of ``total``, with the loss and examples/s when given."""

    def __init__(  # noqa: PLR0913 - keyword-only display options
        self,
        total: int,
        *,
        desc: str,
        unit: str = "step",
        initial: int = 0,
        enabled: bool = True,
        stream: TextIO | None = None,
        every_s: float = EVERY_S,
    ) -> None:
        self.total, self.desc, self.unit, self.done = total, desc, unit, initial
        self.stream = stream or sys.stderr
        self.enabled, self.every_s = enabled, every_s
        self.began = self.last = time.monotonic()
        self.first, self.examples = initial, 0
        self.bar: Any = None
        if enabled and _isatty(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit=unit, desc=desc, file=self.stream,
                            dynamic_ncols=True)  # fmt: skip
        self.lines = enabled and self.bar is None
        self.wrote = False

    def update(self, n: int = 1, *, examples: int = 0, loss: float | None = None) -> None:
        self.done += n
        self.examples += examples
        if self.bar is not None:
            self.bar.update(n)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}")
            return
        now = time.monotonic()
        if self.lines and (not self.wrote or self.done >= self.total or now - self.last >= self.every_s):
            self.stream.write(self.line(now, loss) + "\n")
            self.stream.flush()
            self.last, self.wrote = now, True

    def line(self, now: float, loss: float | None) -> str:
        elapsed = now - self.began
        parts = [
            f"{self.desc}: {self.unit} {self.done}/{self.total} ({100 * self.done // max(self.total, 1)} %)"
        ]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if self.examples and elapsed > 0:
            parts.append(f"{self.examples / elapsed:.1f} examples/s")
        rate = (self.done - self.first) / elapsed if elapsed > 0 else 0.0
        if self.done < self.total and rate > 0:
            parts.append(f"ETA {duration((self.total - self.done) / rate)}")
        return ", ".join(parts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def interrupted(out: Path, step: int, total: int, stream: TextIO | None = None) -> None:
    """Say where an interrupted run stands and how to continue it (Ctrl-C)."""
    from finesift.train.checkpoint import latest_checkpoint

    found = latest_checkpoint(out)
    where = (
        f"the last checkpoint is {found}; continue with the same command and --resume"
        if found is not None
        else "no checkpoint was written (pass --save-steps N to keep one every N steps)"
    )
    (stream or sys.stderr).write(f"interrupted at step {step} of {total}: {where}\n")


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
