"""The rating web app in process (Starlette TestClient): the rater flow, opaque ids, 4xx that change nothing,
images only from the study, the admin API, request bodies capped (413) and checked (422)."""

from __future__ import annotations

import asyncio
import json
import warnings

import pytest
from mos_util import make_folders

with warnings.catch_warnings():  # starlette asks for httpx2 in its TestClient; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from srgan.mos import db
from srgan.mos.app import MAX_BODY, create_app


@pytest.fixture
def study(tmp_path):
    f = make_folders(tmp_path, methods=("bicubic", "SRGAN-VGG54"), images=("a", "b"))
    made = db.create_study(
        tmp_path / "s.sqlite", f["methods"], f["reference"], f["calibration"],
        images_per_rater=1, repeats=1, raters=2, seed=0,
    )  # fmt: skip
    return made


def _count(path) -> int:
    with db.open_study(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]


def test_rater_flow_resumes_and_hides_methods(study):
    client = TestClient(create_app(study.path))
    token = study.rater_tokens[0]
    seen = []  # every text the browser receives
    page = client.get(f"/r/{token}")
    assert page.status_code == 200 and "Image quality rating" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    seen += [page.text, client.get("/static/rate.js").text]
    state = client.get(f"/api/r/{token}/state").json()
    assert not state["started"] and [a["score"] for a in state["anchors"]] == [1, 5]
    state = client.post(f"/api/r/{token}/start", json={}).json()
    assert state["started"] and state["total"] == 2 + 3 + 1
    while not state["done"]:
        item = state["next"]
        img = client.get(f"/api/r/{token}/image/{item['image']}")
        assert img.status_code == 200 and img.headers["content-type"] == "image/png"
        score = item["anchor"] or 4
        body = {"position": item["position"], "image": item["image"], "score": score}
        answer = client.post(f"/api/r/{token}/rate", json=body)
        assert answer.status_code == 200 and answer.json()["recorded"]
        seen.append(answer.text)
        if answer.json()["rated"] == 3:  # a reload midway: the same state comes back
            assert client.get(f"/api/r/{token}/state").json() == {
                k: v for k, v in answer.json().items() if k not in ("recorded", "duplicate")
            }
        retry = client.post(f"/api/r/{token}/rate", json=body)  # the same request again
        assert retry.status_code == 200 and retry.json()["duplicate"]
        state = retry.json()
    assert state["rated"] == state["total"] == _count(study.path)
    text = "\n".join(seen)
    # the opaque ids and tokens are random base64 and may contain "HR" or "Set5" by chance: blank them first
    with db.open_study(study.path) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM images UNION ALL SELECT token FROM raters")]
    for opaque in ids:
        text = text.replace(opaque, "<id>")
    for name in ("bicubic", "SRGAN", "HR", "nearest", "Set5", '"a"'):
        assert name not in text, name


def test_bad_requests_are_4xx_and_change_nothing(study):
    client = TestClient(create_app(study.path))
    token, other = study.rater_tokens
    item = client.get(f"/api/r/{token}/state").json()["next"]
    pos = item["position"]
    url = f"/api/r/{token}/rate"
    for score in (0, 6, -1, 3.5, "3", True, None):
        r = client.post(url, json={"position": item["position"], "image": item["image"], "score": score})
        assert r.status_code == 422 and "1 to 5" in r.json()["error"]
    cases = [
        ("/api/r/nope/rate", {"position": pos, "image": item["image"], "score": 3}, 404, "unknown"),
        (url, {"position": 99, "image": item["image"], "score": 3}, 404, "no item at position 99"),
        (url, {"position": item["position"], "image": "zzz", "score": 3}, 409, "out of date"),
        (url, {"position": "0", "image": item["image"], "score": 3}, 422, "whole number"),
        (url, {"position": pos, "score": 3}, 422, "image"),
    ]  # fmt: skip
    for path, body, status, message in cases:
        r = client.post(path, json=body)
        assert r.status_code == status and message in r.json()["error"], (path, body, r.text)
    r = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["error"]
    assert client.post(url, json=[1, 2]).status_code == 422
    assert _count(study.path) == 0
    # images: only those in the rater's own items, only by opaque id
    assert client.get("/api/r/nope/state").status_code == 404
    assert client.get("/r/nope").status_code == 404
    with db.open_study(study.path) as conn:
        mine = {r[0] for r in conn.execute("SELECT image_id FROM assignments WHERE rater_id = 1")}
        theirs = {r[0] for r in conn.execute("SELECT image_id FROM assignments WHERE rater_id = 2")}
    foreign = next(iter(theirs - mine))  # one image each: the other rater's versions are not ours
    assert client.get(f"/api/r/{token}/image/{foreign}").status_code == 404
    assert client.get(f"/api/r/{other}/image/{foreign}").status_code == 200
    for path in (f"/api/r/{token}/image/..%2F..%2Fs.sqlite", "/static/../db.py", "/static/%2e%2e/db.py"):
        assert client.get(path).status_code == 404, path
    # a rated item cannot change
    body = {"position": item["position"], "image": item["image"], "score": 2}
    assert client.post(url, json=body).status_code == 200
    r = client.post(url, json=body | {"score": 5})
    assert r.status_code == 409 and "cannot be changed" in r.json()["error"]
    assert _count(study.path) == 1


def test_admin_progress_and_new_links(study):
    client = TestClient(create_app(study.path))
    with db.open_study(study.path) as conn:
        admin = db.get_meta(conn)["admin_token"]
    assert client.get("/admin/wrong").status_code == 404
    assert client.get("/api/admin/wrong/progress").status_code == 404
    assert client.post("/api/admin/wrong/raters", json={"count": 1}).status_code == 404
    assert "MOS study: progress" in client.get(f"/admin/{admin}").text
    prog = client.get(f"/api/admin/{admin}/progress").json()
    assert (len(prog["raters"]), prog["ratings"], prog["assigned"]) == (2, 0, 12)
    assert prog["raters"][0]["link"] == f"http://testserver/r/{study.rater_tokens[0]}"
    r = client.post(f"/api/admin/{admin}/raters", json={"count": 2, "name": "lab"})
    links = r.json()["links"]
    assert r.status_code == 200 and len(links) == 2
    assert client.get(links[0].removeprefix("http://testserver")).status_code == 200
    assert client.post(f"/api/admin/{admin}/raters", json={"count": 0}).status_code == 400
    assert client.post(f"/api/admin/{admin}/raters", json={"count": "2"}).status_code == 422
    assert client.post(f"/api/admin/{admin}/raters", content=b'{"name": "\\ud800"}').status_code == 422
    prog = client.get(f"/api/admin/{admin}/progress").json()
    assert [r["name"] for r in prog["raters"]] == ["", "", "lab", "lab"]


def test_numbers_out_of_range_and_malformed_bodies_are_422(study):
    """Each of these was a 500 (OverflowError from SQLite, RecursionError from the JSON parser) or a 400."""
    client = TestClient(create_app(study.path))
    token = study.rater_tokens[0]
    with db.open_study(study.path) as conn:
        admin = db.get_meta(conn)["admin_token"]
    item = client.get(f"/api/r/{token}/state").json()["next"]
    url = f"/api/r/{token}/rate"
    for position in (2**63, 2**64, 10**4000, -1, -(2**63) - 1, 1.5, 1.0, True, None, "0", [0]):
        r = client.post(url, content=json.dumps({"position": position, "image": item["image"], "score": 3}))
        assert r.status_code == 422 and "position must be a whole number from 0" in r.json()["error"], r.text
        assert len(r.json()["error"]) < 200  # a 4001-digit number is cut short in the message
    r = client.post(url, json={"position": 2**63 - 1, "image": item["image"], "score": 3})
    assert r.status_code == 404  # the largest SQLite integer is a valid position, just not in this study
    for score in (2**63, 10**4000, -(2**64)):
        r = client.post(url, content=json.dumps({"position": item["position"], "image": item["image"],
                                                 "score": score}))  # fmt: skip
        assert r.status_code == 422 and "1 to 5" in r.json()["error"], r.text
    r = client.post(url, content=b'{"position": 0, "image": "\\ud800", "score": 3}')  # a lone surrogate
    assert r.status_code == 422 and "image" in r.json()["error"]
    nested = [b"[" * 10000, b"{" + b'"a":{' * 3000, b"[" * (MAX_BODY - 1) + b"]"]  # all under the cap
    bodies = [*nested, b"{not json", b"", b"\xff\xfe", b"[1, 2]", b'"text"', b"3", b"null"]
    for path in (url, f"/api/admin/{admin}/raters"):
        for content in bodies:
            r = client.post(path, content=content, headers={"content-type": "application/json"})
            assert r.status_code == 422 and "JSON" in r.json()["error"], (path, content[:20], r.text)
    assert _count(study.path) == 0
    assert client.post(url, json={**item, "score": 4}).json()["recorded"]  # and it still takes ratings
    assert _count(study.path) == 1


def test_bodies_over_the_cap_are_413_before_the_token_is_checked(study):
    client = TestClient(create_app(study.path))
    token = study.rater_tokens[0]
    item = client.get(f"/api/r/{token}/state").json()["next"]
    rating = json.dumps({"position": item["position"], "image": item["image"], "score": 4}).encode()
    big = rating + b" " * (MAX_BODY + 1 - len(rating))
    for path in (f"/api/r/{token}/rate", "/api/r/nope/rate", f"/api/r/{token}/start",
                 "/api/admin/wrong/raters", f"/api/r/{token}/state"):  # fmt: skip
        r = client.request("GET" if path.endswith("state") else "POST", path, content=big)
        assert r.status_code == 413 and "16384 bytes" in r.json()["error"], (path, r.text)
        assert r.headers["cache-control"] == "no-store"
    assert _count(study.path) == 0
    r = client.post(f"/api/r/{token}/rate", content=big[:MAX_BODY])  # exactly the cap: taken
    assert r.status_code == 200 and r.json()["recorded"] and _count(study.path) == 1


def _asgi_post(app, path: str, chunks, headers=()) -> tuple[int, dict, int]:
    """POST `chunks` (an iterator of bytes) to the ASGI app the way a server streams a chunked body, without
    a Content-Length -> (status, JSON answer, bytes the app pulled from the body)."""
    pulled = 0

    async def receive():
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"testserver"), *headers], "server": ("testserver", 80),
             "client": ("127.0.0.1", 1)}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), pulled


def test_a_chunked_body_stops_at_the_cap_without_reading_the_rest(study):
    """No Content-Length: the body is counted as it arrives and the app stops pulling it past the cap (it was
    read whole into memory: 512 MB to an unknown token took the server from 282 MB to 1.3 GB)."""
    app = create_app(study.path)
    for path in ("/api/r/nope/rate", f"/api/r/{study.rater_tokens[0]}/rate"):
        chunks = (b"x" * 1024 for _ in range(1024))  # 1 MiB, 64 times the cap, made only as far as pulled
        status, answer, pulled = _asgi_post(app, path, chunks)
        assert status == 413 and "16384 bytes" in answer["error"]
        assert pulled <= MAX_BODY + 1024
    # a declared Content-Length over the cap: 413 before a byte of the body is pulled
    chunks = iter([b"x" * 1024] * 100)
    status, _, pulled = _asgi_post(app, "/api/r/nope/rate", chunks, [(b"content-length", b"536870912")])
    assert (status, pulled) == (413, 0)
    # a body under the cap in small chunks is read whole
    token = study.rater_tokens[0]
    item = TestClient(app).get(f"/api/r/{token}/state").json()["next"]
    rating = json.dumps({"position": item["position"], "image": item["image"], "score": 4}).encode()
    status, answer, _ = _asgi_post(app, f"/api/r/{token}/rate", (rating[i : i + 7] for i in range(0, 99, 7)))
    assert status == 200 and answer["recorded"] and _count(study.path) == 1
