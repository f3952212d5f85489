"""The rating web app in process (Starlette TestClient): the rater flow, opaque ids, 4xx that change nothing,
images only from the study, the admin API."""

from __future__ import annotations

import warnings

import pytest
from mos_util import make_folders

with warnings.catch_warnings():  # starlette asks for httpx2 in its TestClient; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from srgan.mos import db
from srgan.mos.app import create_app


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
        (url, {"position": "0", "image": item["image"], "score": 3}, 400, "whole number"),
        (url, {"score": 3}, 400, "image"),
    ]  # fmt: skip
    for path, body, status, message in cases:
        r = client.post(path, json=body)
        assert r.status_code == status and message in r.json()["error"], (path, body, r.text)
    r = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    assert client.post(url, json=[1, 2]).status_code == 400
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
    assert client.post(f"/api/admin/{admin}/raters", json={"count": "2"}).status_code == 400
    prog = client.get(f"/api/admin/{admin}/progress").json()
    assert [r["name"] for r in prog["raters"]] == ["", "", "lab", "lab"]
