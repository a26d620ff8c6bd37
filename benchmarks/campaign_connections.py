"""The issue-22 phases of ``server_campaign.py``: parse lanes, slow bodies, header sizes, names and methods.

Each phase takes the campaign (its ``url``, ``port`` and ``call``) and a client, and returns what it
saw; none asserts. Run them with the settings they probe scaled down, e.g.::

    PYTHONPATH=src python benchmarks/server_campaign.py --phases lanes,slow_bodies,headers,names \\
        --server-setting server.max_connections=16 --server-setting server.body_timeout=3 \\
        --server-setting server.body_deadline=8 --server-setting kb.parse_timeout_s=5
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx

from finesift.testing.hostile import shared_stream_pdf


async def lanes(campaign: Any, client: httpx.AsyncClient, *, flood: int = 8) -> dict[str, Any]:
    """``flood`` hostile PDF uploads to KB ``a``, then a one-line Markdown and a PDF upload to ``b``."""
    pdf = shared_stream_pdf(pages=2, stream_bytes=8_000_000)
    for kb in ("lanes-a", "lanes-b"):
        await campaign.call(client, "POST", "/v1/kbs", json={"name": kb})

    async def upload(kb: str, name: str, data: bytes) -> tuple[str, float]:
        began = time.monotonic()
        files = [("files", (name, data))]
        r = await campaign.call(client, "POST", f"/v1/kbs/{kb}/documents", files=files, timeout=600)
        return ("no-answer" if r is None else str(r.status_code)), time.monotonic() - began

    a_jobs = [asyncio.create_task(upload("lanes-a", f"h{i}.pdf", pdf)) for i in range(flood)]
    await asyncio.sleep(0.5)
    b_pdf = asyncio.create_task(upload("lanes-b", "other.pdf", pdf))
    md_status, md_s = await upload("lanes-b", "note.md", b"# Backups\n\nThe nightly backup runs at two.\n")
    b_status, b_s = await b_pdf
    a = await asyncio.gather(*a_jobs)
    return {
        "flood_pdfs_to_a": flood,
        "md_to_b": {"status": md_status, "seconds": round(md_s, 2)},
        "pdf_to_b": {"status": b_status, "seconds": round(b_s, 2)},
        "pdfs_to_a": {"statuses": dict(Counter(s for s, _ in a)),
                      "seconds_min_max": [round(min(t for _, t in a), 2), round(max(t for _, t in a), 2)]},
    }  # fmt: skip


async def slow_bodies(campaign: Any, client: httpx.AsyncClient, *, sockets: int = 15) -> dict[str, Any]:
    """``sockets`` connections sending a body one byte every 2 s; the probes' statuses meanwhile, and
    how long the server let each slow body run."""
    head = (
        b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )

    async def trickle() -> tuple[str, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", campaign.port)
        began = time.monotonic()
        writer.write(head)
        answer = b""
        try:
            while time.monotonic() - began < 120:
                writer.write(b" ")
                await writer.drain()
                try:
                    answer = await asyncio.wait_for(reader.read(4096), 2.0)
                    break  # an answer, or the connection closed (b"")
                except TimeoutError:
                    continue
        except (ConnectionError, OSError):
            pass
        writer.close()
        return (answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"), time.monotonic() - began

    jobs = [asyncio.create_task(trickle()) for _ in range(sockets)]
    await asyncio.sleep(1.0)
    probes = {}
    async with httpx.AsyncClient(timeout=10) as fresh:  # its own connections, as a prober's
        for path in ("/health", "/ready", "/v1/models"):
            r = await campaign.call(fresh, "GET", path)
            probes[path] = "no-answer" if r is None else r.status_code
    done = await asyncio.gather(*jobs)
    return {
        "slow_sockets": sockets,
        "probes_while_held": probes,
        "slow_answers": dict(Counter(s for s, _ in done)),
        "held_s_max": round(max(t for _, t in done), 1),
    }


async def headers(campaign: Any, client: httpx.AsyncClient) -> dict[str, Any]:
    """100 KB of headers in one write, and 20 KB trickled in 1 KB lines: the status lines."""

    async def send(parts: list[bytes]) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", campaign.port)
        try:
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0.005)
        except (ConnectionError, OSError):
            pass
        try:
            answer = await asyncio.wait_for(reader.read(4096), 15)
        except (TimeoutError, ConnectionError, OSError):
            answer = b""
        writer.close()
        return answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"

    start = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    one_read = await send([start + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n"])
    lines = [b"X-Line-%d: " % i + b"a" * 1000 + b"\r\n" for i in range(20)]
    trickled = await send([start, *lines, b"\r\n"])
    return {"100KB_one_read": one_read, "20KB_trickled": trickled}


async def names(campaign: Any, client: httpx.AsyncClient) -> dict[str, Any]:
    """HEAD /, every name /v1/models lists used as ``model``, and ``:query`` with input_type document."""
    head = await campaign.call(client, "HEAD", "/")
    listed = await campaign.call(client, "GET", "/v1/models")
    used: dict[str, Any] = {}
    for card in listed.json()["data"] if listed is not None else []:
        path, body = (
            ("/v1/rerank", {"model": card["id"], "query": "q", "documents": ["a"]})
            if card["task"] == "rerank"
            else ("/v1/embeddings", {"model": card["id"], "input": "a"})
        )
        r = await campaign.call(client, "POST", path, json=body)
        used[card["id"]] = "no-answer" if r is None else r.status_code
    query_name = next((n for n in used if n.endswith(":query")), None)
    contradiction = await campaign.call(
        client, "POST", "/v1/embeddings", json={"model": query_name, "input": "a", "input_type": "document"}
    )
    return {
        "head_root": None if head is None else head.status_code,
        "listed_names_used": used,
        "query_alias_with_input_type_document": None if contradiction is None else contradiction.status_code,
    }


PHASES = {"lanes": lanes, "slow_bodies": slow_bodies, "headers": headers, "names": names}
