"""Token-aware chunking that respects headings, paragraphs and sentences (Chinese punctuation included).

The text is cut into segments (headings, sentences, or lines of code), each measured with the
embedding model's tokenizer, then packed greedily into chunks of at most ``size`` tokens. A heading
(or, in code, a top-level definition) starts a new chunk; a chunk closed for size carries up to
``overlap`` tokens of trailing sentences into the next; chunks never span PDF pages. Every chunk is
a contiguous slice of the document text: ``chunk.text == text[chunk.start:chunk.end]``, so citations
are exact.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from finesift.errors import InvalidRequest
from finesift.ingest.limits import NO_CAPS, Caps
from finesift.ingest.loaders import CODE_TYPES
from finesift.types import Chunk, Document

#: Token counts of texts, without special tokens.
TokenCounter = Callable[[Sequence[str]], list[int]]

_HEADING = re.compile(r"#{1,6}\s+\S")
_SENTENCE_END = re.compile(r"[。！？!?；;…]+[\"”’」』）)]*|(?<=[\w)\]\"'])[.!?]+(?=\s)")
_CODE_DEF = re.compile(
    r"(?:@|(?:async\s+)?def\s|class\s|function\s|func\s|fn\s|pub\s|impl\s|struct\s|interface\s|export\s|"
    r"public\s|private\s|protected\s|static\s|type\s|module\s|package\s)"
)
_LINE = re.compile(r"[^\n]+")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Segment:
    """``text[start:end]`` (no surrounding whitespace); ``boundary`` segments start a new chunk."""

    start: int
    end: int
    boundary: bool = False
    tokens: int = 0


def _sentences(text: str, start: int, end: int) -> list[Segment]:
    cuts = [m.end() for m in _SENTENCE_END.finditer(text, start, end)]
    out, begin = [], start
    for cut in [*cuts, end]:
        piece = text[begin:cut]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            out.append(Segment(begin + lead, begin + lead + len(stripped)))
        begin = cut
    return out


def split_segments(text: str, *, code: bool = False) -> list[Segment]:
    """Headings, then sentences of each line (prose), or lines with definitions as boundaries (code)."""
    segments: list[Segment] = []
    for line in _LINE.finditer(text):
        body = line.group()
        if not body.strip():
            continue
        lead = len(body) - len(body.lstrip())
        start, end = line.start() + lead, line.start() + len(body.rstrip())
        if code:
            segments.append(Segment(start, end, boundary=lead == 0 and bool(_CODE_DEF.match(body))))
        elif _HEADING.match(body, lead):
            segments.append(Segment(start, end, boundary=True))
        else:
            segments.extend(_sentences(text, start, end))
    return segments


def _split_long(text: str, seg: Segment, size: int, count: TokenCounter) -> list[Segment]:
    """Cut a segment longer than ``size`` tokens into pieces near equal character intervals."""
    pieces = math.ceil(seg.tokens / size) + 1
    step = max(1, (seg.end - seg.start) // pieces)
    cuts, pos = [], seg.start
    while seg.end - pos > step:
        target = pos + step
        space = _SPACE.search(text, target, min(seg.end, target + 32))
        cut = space.start() if space else target
        cuts.append(cut)
        pos = cut
    bounds = [seg.start, *cuts, seg.end]
    out: list[Segment] = []
    for a, b in itertools.pairwise(bounds):
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        if piece.strip():
            out.append(Segment(a + lead, a + lead + len(piece.strip()), boundary=seg.boundary and not out))
    counts = count([text[s.start : s.end] for s in out])
    return [Segment(s.start, s.end, s.boundary, n) for s, n in zip(out, counts, strict=True)]


def measure(text: str, segments: list[Segment], size: int, count: TokenCounter) -> list[Segment]:
    """Segments with token counts, none longer than ``size`` tokens."""
    counts = count([text[s.start : s.end] for s in segments]) if segments else []
    out: list[Segment] = []
    for seg, n in zip(segments, counts, strict=True):
        seg = Segment(seg.start, seg.end, seg.boundary, n)
        out.extend(_split_long(text, seg, size, count) if n > size else [seg])
    return out


def _overlap_tail(current: list[Segment], overlap: int) -> list[Segment]:
    tail: list[Segment] = []
    total = 0
    for seg in reversed(current[1:]):
        if seg.boundary or total + seg.tokens > overlap:
            break
        tail.insert(0, seg)
        total += seg.tokens
    return tail


def pack(segments: list[Segment], *, size: int, overlap: int) -> list[list[Segment]]:
    """Greedy packing into groups of at most ``size`` tokens; boundaries start a group."""
    groups: list[list[Segment]] = []
    current: list[Segment] = []
    used = 0
    for seg in segments:
        only_headings = all(s.boundary for s in current)
        if current and seg.boundary and not only_headings:
            groups.append(current)
            current, used = [], 0
        elif current and used + seg.tokens > size:
            groups.append(current)
            current = _overlap_tail(current, overlap)
            used = sum(s.tokens for s in current)
            if used + seg.tokens > size:
                current, used = [], 0
        current.append(seg)
        used += seg.tokens
    if current:
        groups.append(current)
    return groups


def _page_boundaries(segments: list[Segment], page_starts: Sequence[int]) -> list[Segment]:
    """Make the first segment of each page a boundary, so a chunk never spans pages (exact citations)."""
    starts = [s.start for s in segments]
    firsts = {bisect.bisect_left(starts, p) for p in page_starts[1:]}
    return [Segment(s.start, s.end, True) if i in firsts else s for i, s in enumerate(segments)]


def chunk_document(
    document: Document, doc_id: str, *, count: TokenCounter, size: int, overlap: int, caps: Caps = NO_CAPS
) -> list[Chunk]:
    """The document's chunks in order; ``count`` measures tokens (no special tokens).

    A document over ``caps.tokens`` or ``caps.chunks`` is refused (:class:`~finesift.errors.TooLarge`).
    """
    if size < 16 or not 0 <= overlap < size:
        raise InvalidRequest(
            f"chunk size must be >= 16 and 0 <= overlap < size, not size={size} overlap={overlap}"
        )
    text = document.text
    segments = split_segments(text, code=document.file_type in CODE_TYPES)
    segments = measure(text, _page_boundaries(segments, document.page_starts), size, count)
    caps.check_chunks(document.source, chunks=0, tokens=sum(s.tokens for s in segments))
    groups = pack(segments, size=size, overlap=overlap)
    caps.check_chunks(document.source, chunks=len(groups), tokens=0)
    chunks = []
    for index, group in enumerate(groups):
        start, end = group[0].start, group[-1].end
        page = bisect.bisect_right(document.page_starts, start) if document.page_starts else None
        chunks.append(
            Chunk(doc_id, index, text[start:end], start, end, page, document.source, document.file_type)
        )
    return chunks
