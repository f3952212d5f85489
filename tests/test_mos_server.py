"""The rating server as people run it (`srgan mos serve` in its own process, uvicorn, loopback): a load test
with concurrent raters and retried requests, and SIGKILL at random moments losing no acknowledged rating."""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from mos_util import free_port, make_folders, start_server

from srgan.mos import db

RATERS, RATINGS = 30, 2000


def _score(rater: int, position: int) -> int:
    return (rater * 7 + position * 3) % 5 + 1


def _stored(path) -> list[tuple[int, int, int]]:
    with db.open_study(path) as conn:
        return conn.execute("SELECT rater_id, position, score FROM ratings ORDER BY 1, 2").fetchall()


def test_load_30_raters_2000_ratings_each_stored_once(tmp_path):
    methods = tuple(f"m{i}" for i in range(10))  # + HR: 11 versions x 6 images + 1 repeat = 67 items a rater
    f = make_folders(tmp_path, methods=methods, images=tuple("abcdef"), calibration=())
    made = db.create_study(tmp_path / "s.sqlite", f["methods"], f["reference"], None, repeats=1,
                           raters=RATERS, seed=0)  # fmt: skip
    quota = [RATINGS // RATERS + (i < RATINGS % RATERS) for i in range(RATERS)]  # 20 x 67 + 10 x 66
    port = free_port()
    server = start_server(made.path, port, tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}/api/r"
    sent: dict[tuple[int, int], int] = {}
    duplicates = []
    lock = threading.Lock()
    barrier = threading.Barrier(RATERS)

    def rater(i: int) -> None:
        token = made.rater_tokens[i]
        with httpx.Client(timeout=60) as client:
            state = client.get(f"{base}/{token}/state").json()
            barrier.wait()
            for k in range(quota[i]):
                item = state["next"]
                body = {"position": item["position"], "image": item["image"], "score": _score(i + 1, k)}
                r = client.post(f"{base}/{token}/rate", json=body)
                assert r.status_code == 200 and r.json()["recorded"], r.text
                if k % 10 == 3:  # a client retrying the same request: no second row
                    retry = client.post(f"{base}/{token}/rate", json=body)
                    assert retry.status_code == 200 and retry.json()["duplicate"], retry.text
                    with lock:
                        duplicates.append(1)
                with lock:
                    sent[i + 1, item["position"]] = body["score"]
                state = r.json()

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(RATERS) as pool:
            list(pool.map(rater, range(RATERS)))
        wall = time.perf_counter() - start
        # the same rating sent by many clients at once is stored once
        token = made.rater_tokens[-1]
        item = httpx.get(f"{base}/{token}/state").json()["next"]
        body = {"position": item["position"], "image": item["image"], "score": 3}
        with ThreadPoolExecutor(10) as pool:
            answers = list(
                pool.map(lambda _: httpx.post(f"{base}/{token}/rate", json=body, timeout=60), range(10))
            )
        assert sorted(a.json()["recorded"] for a in answers) == [False] * 9 + [True]
        sent[RATERS, item["position"]] = 3
    finally:
        server.terminate()
        server.wait(timeout=30)
    requests = RATINGS + len(duplicates)
    print(f"\nload test: {RATERS} raters, {RATINGS} ratings + {len(duplicates)} retried requests "
          f"in {wall:.2f} s: {RATINGS / wall:.0f} ratings/s, {requests / wall:.0f} requests/s")  # fmt: skip
    stored = _stored(made.path)
    assert len(stored) == len(sent) == RATINGS + 1
    assert {(r, p): s for r, p, s in stored} == sent  # every rating exactly once, with the score sent
    assert wall < 60


def test_sigkill_loses_no_acknowledged_rating_and_resumes(tmp_path):
    f = make_folders(tmp_path, methods=("m0", "m1", "m2"), images=tuple("abcdefghij"), calibration=("cal",))
    made = db.create_study(tmp_path / "s.sqlite", f["methods"], f["reference"], f["calibration"],
                           repeats=2, raters=1, seed=0)  # fmt: skip
    token = made.rater_tokens[0]
    total = 2 + 40 + 2
    acknowledged: dict[int, int] = {}
    rng = random.Random(0)
    log = tmp_path / "server.log"
    for cycle in range(2):
        port = free_port()
        server = start_server(made.path, port, log)
        base = f"http://127.0.0.1:{port}/api/r/{token}"
        state = httpx.get(f"{base}/state").json()
        # resumption: the next item is the first one without a rating (none skipped, none repeated)
        assert state["rated"] >= len(acknowledged) and state["next"]["position"] == state["rated"]
        stop = threading.Event()

        def rate(base=base, state=state, stop=stop) -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set() and not state["done"]:
                    item = state["next"]
                    body = {
                        "position": item["position"],
                        "image": item["image"],
                        "score": _score(1, item["position"]),
                    }
                    try:
                        r = client.post(f"{base}/rate", json=body)
                    except httpx.TransportError:
                        return  # the server is gone; this rating may or may not be stored
                    acknowledged[item["position"]] = body["score"]
                    state = r.json()

        worker = threading.Thread(target=rate)
        worker.start()
        target = len(acknowledged) + rng.randint(3, 10)
        while len(acknowledged) < target and worker.is_alive():
            time.sleep(0.001)
        time.sleep(rng.random() * 0.02)  # a random moment, usually mid-request
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        stop.set()
        worker.join(timeout=30)
        stored = dict((p, s) for _, p, s in _stored(made.path))
        assert acknowledged.items() <= stored.items(), f"cycle {cycle}: acknowledged ratings lost"
        with sqlite3.connect(made.path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # after the last crash: restart and finish
    port = free_port()
    server = start_server(made.path, port, log)
    try:
        base = f"http://127.0.0.1:{port}/api/r/{token}"
        state = httpx.get(f"{base}/state").json()
        while not state["done"]:
            item = state["next"]
            body = {
                "position": item["position"],
                "image": item["image"],
                "score": _score(1, item["position"]),
            }
            state = httpx.post(f"{base}/rate", json=body).json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    stored = _stored(made.path)
    assert [p for _, p, _ in stored] == list(range(total))
    assert all(s == _score(1, p) for _, p, s in stored)
