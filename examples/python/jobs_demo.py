"""Jobs from Python, written from docs/protocol.md §8: a worker thread serves ``py-upper``;
the main thread submits durable jobs, makes synchronous calls, and calls a service served
by a worker in another language (``ts-reverse``, if the test started one).

Usage: jobs_demo.py <endpoint> <count> [interop-service]
Prints one JSON line and exits 0 on success.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import zmq

from ferry_client import FerryClient, FerryError

DEADLINE_S = 30


def serve(endpoint: str, ctx: zmq.Context, stop: threading.Event, ready: threading.Event) -> None:
    with FerryClient(endpoint, context=ctx) as w:
        w.hello(client="py-worker", heartbeat_ms=1000)
        w.worker(["py-upper"], concurrency=1)
        ready.set()
        while not stop.is_set():
            job = w.next_assignment(timeout_ms=100)
            if job is None:
                continue
            text = job.params[0].decode()
            if text == "fail-me":
                w.fail(job.id, "BAD_INPUT", "refused on purpose", retry=False)
                continue
            w.progress(job.id, progress={"half": True}, partial=b"partial")
            w.complete(job.id, text.upper())


def main() -> int:
    endpoint, count = sys.argv[1], int(sys.argv[2])
    interop = sys.argv[3] if len(sys.argv) > 3 else None
    ctx = zmq.Context()
    stop, ready = threading.Event(), threading.Event()
    t = threading.Thread(target=serve, args=(endpoint, ctx, stop, ready), daemon=True)
    t.start()
    if not ready.wait(DEADLINE_S):
        print("worker did not start", file=sys.stderr)
        return 1
    out: dict[str, object] = {}
    with FerryClient(endpoint, context=ctx, timeout_ms=DEADLINE_S * 1000) as c:
        c.hello(client="py-jobs-demo")
        ids = [c.submit("py-upper", f"job-{i}")["id"] for i in range(count)]
        deadline = time.monotonic() + DEADLINE_S
        results = {}
        for job_id in ids:
            while True:
                job, frames = c.job(job_id)
                if job["status"] == "done":
                    results[job_id] = frames[0].decode()
                    break
                if time.monotonic() > deadline:
                    print(f"job {job_id} still {job['status']}", file=sys.stderr)
                    return 1
                time.sleep(0.01)
        out["submitted"] = len(ids)
        out["done"] = sum(1 for i, job_id in enumerate(ids) if results[job_id] == f"JOB-{i}")
        _, frames = c.call("py-upper", "hello", timeout_ms=5000)
        out["call"] = frames[0].decode()
        try:
            c.call("py-upper", "fail-me", timeout_ms=5000)
            out["failure_code"] = None
        except FerryError as e:
            out["failure_code"] = e.code
        if interop:
            _, frames = c.call(interop, "python", timeout_ms=5000)
            out["interop"] = frames[0].decode()
    stop.set()
    t.join(5)
    ctx.term()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
