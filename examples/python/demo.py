#!/usr/bin/python3
"""Ferry protocol demo: send, consume, ack, and an ERROR reply.

Usage: /usr/bin/python3 examples/python/demo.py <endpoint> <queue> <count>

1. Sends ``count`` messages (bodies ``msg-0`` ... ``msg-<count-1>``) to ``queue`` in a few
   SEND batches, each with a request key. ``msg-0`` has two frames, ``msg-1`` carries headers.
2. Starts a consumer with prefetch 50, receives until every body has arrived, acking each
   received batch. Delivery is at least once, so a body seen again counts as a duplicate.
3. Sends a bogus command and checks that the broker answers ERROR ``UNKNOWN_COMMAND``
   (and keeps serving: a PING afterwards still works).
4. Prints one JSON line on stdout (wrapped here)::

       {"sent": N, "received": N, "duplicates": D, "acked": N,
        "unknown_command_code": "UNKNOWN_COMMAND"}

Exits 0 on success; non-zero with a message on stderr on any failure, or after 30 s.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ferry_client import Delivery, FerryClient, FerryError, Message  # noqa: E402

TIME_LIMIT_S = 30
PREFETCH = 50
EXTRA_FRAME = b"second-frame"
DEMO_HEADERS = {"source": "demo.py", "kind": "with-headers"}


class DemoFailure(Exception):
    pass


def _on_alarm(_signum: int, _frame: object) -> None:
    # Backstop: every loop below is bounded by a deadline too.
    sys.stderr.write(f"demo.py: took longer than {TIME_LIMIT_S} s\n")
    sys.stderr.flush()
    os._exit(3)


def build_messages(count: int) -> list[bytes | Message]:
    out: list[bytes | Message] = []
    for i in range(count):
        body = f"msg-{i}".encode()
        if i == 0:
            out.append(Message([body, EXTRA_FRAME]))  # a multi-frame message
        elif i == 1:
            out.append(Message(body, headers=DEMO_HEADERS))  # a message with headers
        else:
            out.append(body)
    return out


def run(endpoint: str, queue: str, count: int, deadline: float) -> dict[str, object]:
    def left_ms() -> int:
        ms = int((deadline - time.monotonic()) * 1000)
        if ms <= 0:
            raise DemoFailure(f"took longer than {TIME_LIMIT_S} s")
        return ms

    with FerryClient(endpoint, timeout_ms=10_000) as client:
        client.hello(client="ferry-python-demo/1.0")
        max_batch = int(client.limits.get("maxBatchMessages", 10_000))

        # 1. Send in a few batches. A unique request key per batch makes a re-send safe.
        messages = build_messages(count)
        batch_size = max(1, min(max_batch, -(-count // 4)))  # about four batches
        key_prefix = uuid.uuid4().hex[:12]
        all_ids: list[str] = []
        for n, start in enumerate(range(0, count, batch_size)):
            left_ms()
            batch = messages[start : start + batch_size]
            ids = client.send(queue, batch, request_key=f"{key_prefix}:{n}")
            if len(ids) != len(batch):
                raise DemoFailure(f"SEND returned {len(ids)} ids for {len(batch)} messages")
            all_ids.extend(ids)
        if len(set(all_ids)) != len(all_ids):
            raise DemoFailure("SEND returned duplicate ids")
        expected = {f"msg-{i}".encode() for i in range(count)}

        # 2. Consume everything, acking each received batch.
        seen: dict[bytes, str] = {}  # body -> id
        duplicates = 0
        acked_ids: set[str] = set()
        if count > 0:
            client.consume(queue, PREFETCH)
        while len(seen) < count or len(acked_ids) < count:
            batch = client.receive(timeout_ms=min(1000, left_ms()))
            to_ack: list[str] = []
            for d in batch:
                body = d.body
                if body not in expected:
                    raise DemoFailure(f"unexpected body {body!r} (id {d.id})")
                if body in seen:
                    duplicates += 1
                else:
                    seen[body] = d.id
                check_delivery(d)
                to_ack.append(d.id)
            if to_ack:
                result = client.ack(to_ack)
                failed = {f["id"] for f in result.get("failed", [])}
                acked_ids.update(i for i in to_ack if i not in failed)
                # A failed (LEASE_LOST) id is redelivered and acked again then.

        # 3. A bogus command gets ERROR UNKNOWN_COMMAND, and the broker keeps serving.
        try:
            client.request("BOGUS", {})
        except FerryError as e:
            unknown_code = e.code
        else:
            raise DemoFailure("BOGUS was answered OK")
        if unknown_code != "UNKNOWN_COMMAND":
            raise DemoFailure(f"BOGUS was answered {unknown_code}, expected UNKNOWN_COMMAND")
        client.ping()

        return {
            "sent": len(all_ids),
            "received": len(seen),
            "duplicates": duplicates,
            "acked": len(acked_ids),
            "unknown_command_code": unknown_code,
        }


def check_delivery(d: Delivery) -> None:
    if d.attempt < 1:
        raise DemoFailure(f"message {d.id}: attempt {d.attempt}")
    if d.body == b"msg-0":
        if d.frames != [b"msg-0", EXTRA_FRAME]:
            raise DemoFailure(f"multi-frame message arrived as {d.frames!r}")
    elif len(d.frames) != 1:
        raise DemoFailure(f"message {d.id} arrived with {len(d.frames)} frames")
    if d.body == b"msg-1":
        if d.headers != DEMO_HEADERS:
            raise DemoFailure(f"headers arrived as {d.headers!r}")
    elif d.headers:
        raise DemoFailure(f"message {d.id} has unexpected headers {d.headers!r}")


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        sys.stderr.write(f"usage: {argv[0]} <endpoint> <queue> <count>\n")
        return 2
    endpoint, queue = argv[1], argv[2]
    try:
        count = int(argv[3])
        if count < 0:
            raise ValueError
    except ValueError:
        sys.stderr.write(f"demo.py: count must be a non-negative integer, got {argv[3]!r}\n")
        return 2

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(TIME_LIMIT_S + 1)
    deadline = time.monotonic() + TIME_LIMIT_S
    try:
        summary = run(endpoint, queue, count, deadline)
    except Exception as e:  # noqa: BLE001 - report any failure and exit non-zero
        sys.stderr.write(f"demo.py: {type(e).__name__}: {e}\n")
        return 1
    finally:
        signal.alarm(0)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
