"""The search page: ``GET /`` and its static files, both also ``HEAD`` (plain HTML, JS and CSS; no build
step, no CDN).

The files hold no data, so they are served without the API key; the page asks for the key when an
API call answers 401. A strict Content-Security-Policy allows only this origin's scripts and styles.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from finesift.errors import NotFound

router = APIRouter(include_in_schema=False)

STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "index.html": "text/html; charset=utf-8",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _read(name: str) -> bytes:
    return files("finesift.server").joinpath("static", name).read_bytes()


def _serve(name: str) -> Response:
    return Response(_read(name), media_type=STATIC[name], headers=HEADERS)


@router.get("/")
@router.head("/")
async def page() -> Response:
    """The search page."""
    return _serve("index.html")


@router.get("/static/{name}")
@router.head("/static/{name}")
async def static(name: str) -> Response:
    """One of the page's files (a fixed list: nothing else on disk is reachable)."""
    if name not in STATIC:
        raise NotFound(f"no static file {name!r}")
    return _serve(name)
