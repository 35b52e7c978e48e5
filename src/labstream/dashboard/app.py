"""The web app (Starlette): one page, a JSON API, and server-sent events for live updates.

Everything the page shows came from topics anyone with write access can fill, so the page
only ever sets text (never HTML) and the Content-Security-Policy forbids inline script and
anything not served from here. With a token, every request needs it: as a bearer header,
or once as `/?token=...`, which sets an HttpOnly cookie and redirects to a clean URL.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from labstream.dashboard.store import Store
from labstream.dashboard.views import fleet, search, throughput

__all__ = ["STATIC", "create_app"]

STATIC = Path(__file__).parent / "static"
COOKIE = "labstream_dashboard"
PUSH_EVERY_SECONDS = 2.0  # ages and stale marks move even when nothing arrives
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def create_app(
    store: Store,
    *,
    token: str | None = None,
    readers: list[Any] | None = None,
    stop: threading.Event | None = None,
) -> ASGIApp:
    """The ASGI app over `store`; `readers` (objects with `.error`) feed /api/health;
    setting `stop` ends the live streams (so a server can shut down)."""
    stopping = stop or threading.Event()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    def api_fleet(request: Request) -> Response:
        return JSONResponse(fleet(store))

    def api_search(request: Request) -> Response:
        return JSONResponse({"results": search(store, request.query_params.get("q", ""))})

    def api_throughput(request: Request) -> Response:
        return JSONResponse(throughput(store))

    def api_health(request: Request) -> Response:
        errors = [r.error for r in readers or [] if getattr(r, "error", "")]
        return JSONResponse({"ok": not errors, "errors": errors}, status_code=200 if not errors else 503)

    async def events(request: Request) -> Response:
        return StreamingResponse(
            _stream(request, store, stopping),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/fleet", api_fleet),
            Route("/api/search", api_search),
            Route("/api/throughput", api_throughput),
            Route("/api/health", api_health),
            Route("/events", events),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
    )
    return _Guard(app, token)


async def _stream(request: Request, store: Store, stopping: threading.Event) -> AsyncIterator[str]:
    """An SSE stream: the whole view whenever the store changed, at least every 2 s."""
    version, pushed = -1, 0.0
    while not stopping.is_set():
        if store.version != version or time.monotonic() - pushed >= PUSH_EVERY_SECONDS:
            version, pushed = store.version, time.monotonic()
            payload = await run_in_threadpool(_view, store)
            yield f"event: view\ndata: {payload}\n\n"
        await asyncio.sleep(0.25)
        if await request.is_disconnected():
            return


def _view(store: Store) -> str:
    return json.dumps({"fleet": fleet(store), "throughput": throughput(store)}, separators=(",", ":"))


class _Guard:
    """Security headers on every answer; the access token when one is set."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self._app = app
        self._token = token.encode("utf-8") if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self._token is not None:
            verdict = self._check(scope)
            if verdict is not None:
                await verdict(scope, receive, _with_headers(send))
                return
        await self._app(scope, receive, _with_headers(send))

    def _check(self, scope: Scope) -> Response | None:
        """None if the request may pass; else the answer to give instead."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is just no cookie
            cookie = SimpleCookie()
        from_cookie = cookie[COOKIE].value if COOKIE in cookie else ""
        if self._good(bearer) or self._good(from_cookie):
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if self._good(query) and scope["path"] == "/":
            answer = RedirectResponse("/", status_code=303)
            answer.set_cookie(COOKIE, query, httponly=True, samesite="strict")
            return answer
        return PlainTextResponse("a token is needed: open /?token=YOUR-TOKEN once", status_code=401)

    def _good(self, given: str) -> bool:
        return (
            bool(given)
            and self._token is not None
            and hmac.compare_digest(given.encode("utf-8"), self._token)
        )


def _with_headers(send: Send) -> Send:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])
            message["headers"] = [
                *message["headers"],
                *((k.lower().encode(), v.encode()) for k, v in HEADERS.items()),
            ]
        await send(message)

    return wrapped  # type: ignore[return-value]
