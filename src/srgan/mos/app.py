"""The rating web app (Starlette): static HTML/CSS/JS pages and a small JSON API over one study file.

Rater:  GET  /r/{token}                         the rating page (instructions, calibration, items)
        GET  /api/r/{token}/state               progress and the next item (opaque image ids only)
        POST /api/r/{token}/start               instructions read
        POST /api/r/{token}/rate                {"position": int, "image": id, "score": 1..5}; idempotent
        GET  /api/r/{token}/image/{image_id}    image bytes, only for images in this rater's items
Admin:  GET  /admin/{admin_token}               live progress page
        GET  /api/admin/{admin_token}/progress  per-rater progress and invitation links
        POST /api/admin/{admin_token}/raters    {"count": n, "name": str} -> new invitation links

Errors are 4xx JSON {"error": message} and change nothing: 413 for a body over MAX_BODY bytes (no endpoint
takes more than a few hundred), 422 for a body that is not a JSON object of the fields the endpoint takes
(wrong type, or a number out of range), 400/404/409 for what the study refuses. Every request opens its own
SQLite connection in a worker thread; each rating is one committed transaction before the answer is sent.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import db

STATIC = Path(__file__).parent / "static"
HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
API_HEADERS = {**HEADERS, "Cache-Control": "no-store"}
MAX_BODY = 16 * 1024  # bytes of request body: a rating or an admin request is a few hundred
SQLITE_INT_MAX = 2**63 - 1  # SQLite integers are signed 64-bit: a larger one raises OverflowError there


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=API_HEADERS)


class Invalid(db.StudyError):
    """A request body that is not what the endpoint takes: not JSON, not an object, a field of the wrong type
    or out of range."""

    status = 422


class _TooLarge(Exception):
    """Raised by BodyLimit's receive once the body passes the limit; not a StudyError: no route catches it."""


class BodyLimit:
    """ASGI middleware: a request body of more than `limit` bytes is answered 413 and never held in memory.

    The declared Content-Length is checked before the app runs (before any token check, without reading a
    byte of the body); a body without one (chunked) is counted as it arrives and stops at the limit. Routes
    read bodies only through `receive`, so this one place covers them all."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = _error(413, f"the request body is over the {self.limit} bytes this server takes")
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and (len(length) > 18 or int(length) > self.limit):
            await too_large(scope, receive, send)
            return
        received, started = 0, False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _TooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLarge:
            if started:  # an answer is already on its way: nothing sensible left to send
                raise
            await too_large(scope, receive, send)


def _brief(value: object) -> str:
    """repr of a request value for an error message, cut short (a number may have thousands of digits)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_text(value: object) -> bool:
    """A str SQLite can store: JSON may carry lone surrogates ("\\ud800"), which UTF-8 cannot encode."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _rating(data: dict) -> tuple[int, str, int]:
    """(position, image id, score) of a /rate body, each checked here: nothing out of range reaches SQLite."""
    position = data.get("position")
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= SQLITE_INT_MAX:
        raise Invalid(f"position must be a whole number from 0 to {SQLITE_INT_MAX}, got {_brief(position)}")
    image_id = data.get("image")
    if not _is_text(image_id):
        raise Invalid("image must be the image id given by /state")
    score = data.get("score")
    try:
        return position, image_id, db.check_score(score)
    except db.StudyError as e:
        raise Invalid(f"score must be a whole number from 1 to 5, got {_brief(score)}") from e


def create_app(study: str | Path) -> Starlette:
    """The app serving `study` (which must exist)."""
    study = Path(study)
    with db.open_study(study) as conn:
        admin_token = db.get_meta(conn)["admin_token"]

    async def call(fn, *args):
        """Run `fn(conn, *args)` on a fresh connection in a worker thread."""

        def work():
            with db.open_study(study) as conn:
                return fn(conn, *args)

        return await run_in_threadpool(work)

    async def api(fn, *args) -> Response:
        try:
            return JSONResponse(await call(fn, *args), headers=API_HEADERS)
        except db.StudyError as e:
            return _error(e.status, str(e))

    async def body(request: Request) -> dict:
        """The request's JSON object (its size already capped by BodyLimit); Invalid otherwise."""
        try:
            data = json.loads(await request.body())
        except RecursionError as e:  # '[[[[...': the parser gives up past Python's recursion limit
            raise Invalid("the request body must be JSON: it is nested too deeply") from e
        except ValueError as e:  # includes UnicodeDecodeError
            raise Invalid(f"the request body must be JSON: {e}") from e
        if not isinstance(data, dict):
            raise Invalid("the request body must be a JSON object")
        return data

    def is_admin(request: Request) -> bool:
        return secrets.compare_digest(request.path_params["token"].encode(), admin_token.encode())

    async def rater_page(request: Request) -> Response:
        try:
            await call(db.rater_state, request.path_params["token"])
        except db.NotFound:
            return FileResponse(STATIC / "unknown.html", status_code=404, headers=HEADERS)
        return FileResponse(STATIC / "rate.html", headers={**HEADERS, "Cache-Control": "no-store"})

    async def state(request: Request) -> Response:
        return await api(db.rater_state, request.path_params["token"])

    async def start(request: Request) -> Response:
        token = request.path_params["token"]

        def fn(conn):
            db.start(conn, token)
            return db.rater_state(conn, token)

        return await api(fn)

    async def rate(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            position, image_id, score = _rating(await body(request))
        except db.StudyError as e:
            return _error(e.status, str(e))

        def fn(conn):
            recorded = db.record_rating(conn, token, position, image_id, score)
            return {"recorded": recorded, "duplicate": not recorded, **db.rater_state(conn, token)}

        return await api(fn)

    async def image(request: Request) -> Response:
        try:
            data, mime = await call(
                db.rater_image, request.path_params["token"], request.path_params["image_id"]
            )
        except db.StudyError as e:
            return _error(e.status, str(e))
        return Response(data, media_type=mime, headers={**HEADERS, "Cache-Control": "private, max-age=86400"})

    async def admin_page(request: Request) -> Response:
        if not is_admin(request):
            return FileResponse(STATIC / "unknown.html", status_code=404, headers=HEADERS)
        return FileResponse(STATIC / "admin.html", headers={**HEADERS, "Cache-Control": "no-store"})

    def links(request: Request, result: dict) -> dict:
        base = str(request.base_url).rstrip("/")
        for rater in result["raters"]:
            rater["link"] = f"{base}/r/{rater['token']}"
        return result

    async def admin_progress(request: Request) -> Response:
        if not is_admin(request):
            return _error(404, "unknown admin link: use the one `srgan mos serve` printed")
        try:
            return JSONResponse(links(request, await call(db.progress)), headers=API_HEADERS)
        except db.StudyError as e:
            return _error(e.status, str(e))

    async def admin_add(request: Request) -> Response:
        if not is_admin(request):
            return _error(404, "unknown admin link: use the one `srgan mos serve` printed")
        try:
            data = await body(request)
            count, name = data.get("count", 1), data.get("name", "")
            if isinstance(count, bool) or not isinstance(count, int) or not _is_text(name):
                raise Invalid("count must be a whole number and name a string")
            tokens = await call(db.add_raters, count, name[:100])
            base = str(request.base_url).rstrip("/")
            return JSONResponse({"links": [f"{base}/r/{t}" for t in tokens]}, headers=API_HEADERS)
        except db.StudyError as e:
            return _error(e.status, str(e))

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "unknown.html", headers=HEADERS)

    routes = [
        Route("/", index),
        Route("/r/{token}", rater_page),
        Route("/api/r/{token}/state", state),
        Route("/api/r/{token}/start", start, methods=["POST"]),
        Route("/api/r/{token}/rate", rate, methods=["POST"]),
        Route("/api/r/{token}/image/{image_id}", image),
        Route("/admin/{token}", admin_page),
        Route("/api/admin/{token}/progress", admin_progress),
        Route("/api/admin/{token}/raters", admin_add, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(BodyLimit, limit=MAX_BODY)])
