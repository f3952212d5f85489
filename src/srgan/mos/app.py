"""The rating web app (Starlette): static HTML/CSS/JS pages and a small JSON API over one study file.

Rater:  GET  /r/{token}                         the rating page (instructions, calibration, items)
        GET  /api/r/{token}/state               progress and the next item (opaque image ids only)
        POST /api/r/{token}/start               instructions read
        POST /api/r/{token}/rate                {"position": int, "image": id, "score": 1..5}; idempotent
        GET  /api/r/{token}/image/{image_id}    image bytes, only for images in this rater's items
Admin:  GET  /admin/{admin_token}               live progress page
        GET  /api/admin/{admin_token}/progress  per-rater progress and invitation links
        POST /api/admin/{admin_token}/raters    {"count": n, "name": str} -> new invitation links

Errors are 4xx JSON {"error": message} and change nothing. Every request opens its own SQLite connection in
a worker thread; each rating is one committed transaction before the answer is sent.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import db

STATIC = Path(__file__).parent / "static"
HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
API_HEADERS = {**HEADERS, "Cache-Control": "no-store"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=API_HEADERS)


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
        try:
            data = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as e:
            raise db.StudyError(f"the request body must be JSON: {e}") from e
        if not isinstance(data, dict):
            raise db.StudyError("the request body must be a JSON object")
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
            data = await body(request)
            position, image_id, score = data.get("position"), data.get("image"), data.get("score")
            if not isinstance(image_id, str):
                raise db.StudyError("image must be the image id given by /state")
        except db.StudyError as e:
            return _error(400, str(e))
        try:
            db.check_score(score)
        except db.StudyError as e:
            return _error(422, str(e))

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
            if isinstance(count, bool) or not isinstance(count, int) or not isinstance(name, str):
                raise db.StudyError("count must be a whole number and name a string")
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
    return Starlette(routes=routes)
