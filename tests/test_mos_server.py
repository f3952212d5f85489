"""The rating server as people run it (`srgan mos serve` in its own process, uvicorn, loopback): a load test
with concurrent raters and retried requests, SIGKILL at random moments losing no acknowledged rating, and
request bodies over the cap answered 413 without the server holding them in memory."""

from __future__ import annotations

import json
import random
import signal
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from mos_util import free_port, make_folders, start_server

from srgan.mos import db
from srgan.mos.app import MAX_BODY

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


def _answer(port: int, request: bytes) -> tuple[int, dict]:
    """Send `request` (a head and perhaps part of its body) on a raw socket and read the answer without ever
    sending the rest: (status, JSON body). A server that waits for the whole body times out here."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection after {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(fields["content-length"])
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection after {data + body!r}"
            body += chunk
    return int(lines[0].split()[1]), json.loads(body)


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory so far in bytes (Linux VmHWM: a peak, so a spike is not missed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/PID/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from Linux /proc")
def test_oversized_bodies_get_413_at_once_and_the_server_keeps_serving(tmp_path):
    f = make_folders(tmp_path, methods=("m0",), images=("a",), calibration=())
    made = db.create_study(tmp_path / "s.sqlite", f["methods"], f["reference"], None, raters=1, seed=0)
    token = made.rater_tokens[0]
    port = free_port()
    server = start_server(made.path, port, tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}/api/r"
    head = "POST /api/r/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{}\r\n\r\n"
    try:
        state = httpx.get(f"{base}/{token}/state").json()
        item = state["next"]
        # a declared 512 MB body, to a known and an unknown token: 413 before a byte of it is sent
        for path in (f"{token}/rate", "nope/rate"):
            request = head.format(path, f"Content-Length: {512 * 2**20}").encode() + b"{"
            status, answer = _answer(port, request)
            assert status == 413 and f"{MAX_BODY} bytes" in answer["error"]
        # chunked, no length: 413 as soon as the cap is passed, with the rest of the body still to come
        chunks = b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(MAX_BODY // 1024 + 2))
        request = head.format("nope/rate", "Transfer-Encoding: chunked").encode() + chunks
        status, answer = _answer(port, request)
        assert status == 413 and f"{MAX_BODY} bytes" in answer["error"]
        # 160 MiB streamed to an unknown token: was read whole (512 MB took the server from 282 MB to 1.3 GB);
        # now the server drops what it does not take, and its peak memory hardly moves
        before = _peak_rss(server.pid)
        stream = (b" " * 2**20 for _ in range(160))
        r = httpx.post(f"{base}/nope/rate", content=stream, timeout=120)
        grown = _peak_rss(server.pid) - before
        assert r.status_code == 413 and f"{MAX_BODY} bytes" in r.json()["error"]
        assert grown < 100 * 2**20, f"peak RSS grew by {grown / 2**20:.0f} MiB"
        # and it keeps serving: a rating is taken and stored
        body = {"position": item["position"], "image": item["image"], "score": 4}
        r = httpx.post(f"{base}/{token}/rate", json=body)
        assert r.status_code == 200 and r.json()["recorded"], r.text
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert _stored(made.path) == [(1, item["position"], 4)]
    print(f"\n160 MiB streamed body: server peak RSS grew by {grown / 2**20:.1f} MiB")
