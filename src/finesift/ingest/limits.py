"""Per-document caps on what parsing may produce, and the refusals that name the setting to raise.

A cap is checked as early as the format allows (PDF pages before any text is extracted, characters
while a loader produces them), so a small hostile file is refused before it costs much; the parse
time and memory limits of :mod:`finesift.ingest.workers` bound whatever a cap cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from finesift.errors import TooLarge

if TYPE_CHECKING:  # parser workers import this module: keep pydantic out of them
    from finesift.settings import KBSettings


def refusal(source: str, what: str, setting: str) -> TooLarge:
    """``source: <what> (cap <setting>; raise it with FINESIFT_<SETTING>)`` as a :class:`TooLarge`."""
    env = "FINESIFT_" + setting.upper().replace(".", "__")
    return TooLarge(f"{source}: {what} (cap {setting}; raise it with {env} or in the config file)")


@dataclass(frozen=True)
class Caps:
    """What one document may hold; ``None`` is no cap."""

    chars: int | None = None
    pages: int | None = None
    chunks: int | None = None
    tokens: int | None = None

    @classmethod
    def from_settings(cls, kb: KBSettings) -> Caps:
        return cls(chars=kb.max_chars, pages=kb.max_pages, chunks=kb.max_chunks, tokens=kb.max_tokens)

    def check_chars(self, source: str, count: int) -> None:
        """Refuse ``source`` when ``count`` characters of text are over the cap."""
        if self.chars is not None and count > self.chars:
            raise refusal(source, f"more than {self.chars:,} characters of text", "kb.max_chars")

    def check_pages(self, source: str, count: int) -> None:
        if self.pages is not None and count > self.pages:
            raise refusal(source, f"{count:,} pages, more than {self.pages:,}", "kb.max_pages")

    def check_chunks(self, source: str, *, chunks: int, tokens: int) -> None:
        """Refuse a document whose chunks or tokens are over their caps (before anything is embedded)."""
        if self.tokens is not None and tokens > self.tokens:
            raise refusal(source, f"{tokens:,} tokens, more than {self.tokens:,}", "kb.max_tokens")
        if self.chunks is not None and chunks > self.chunks:
            raise refusal(source, f"{chunks:,} chunks, more than {self.chunks:,}", "kb.max_chunks")


NO_CAPS = Caps()
