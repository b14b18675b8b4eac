#!/usr/bin/python3
"""Sends malformed requests and checks the broker answers ERROR and keeps serving.

Usage: /usr/bin/python3 examples/python/malformed.py <endpoint> <queue>

On one connection (after HELLO), sends, per docs/protocol.md §2-§3:

- a message of only 2 frames                      -> expected ERROR BAD_FRAME
- a request with header ``FERRY99``               -> expected ERROR UNSUPPORTED_VERSION
- a request with a header that is not ``FERRY..`` -> expected ERROR BAD_FRAME
- a SEND whose ``messages`` count does not match its payload -> expected ERROR BAD_FRAME

then a normal SEND of one message (``after-malformed``) on the same connection, which must
succeed. Prints one JSON line with the error codes seen and the id of the normal message::

    {"short": "BAD_FRAME", "version": "UNSUPPORTED_VERSION", "header": "BAD_FRAME",
     "mismatch": "BAD_FRAME", "sent_after": ["42"], "reply_headers": ["FERRY01", ...]}

Exits 0 when every reply was as expected; non-zero with a message on stderr otherwise.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ferry_client import FerryClient  # noqa: E402

# name -> (frames to send, expected error code)
CASES: dict[str, tuple[list[bytes], str]] = {
    "short": ([b"FERRY01", b"PING"], "BAD_FRAME"),
    "version": ([b"FERRY99", b"PING", b"bad-version", b""], "UNSUPPORTED_VERSION"),
    "header": ([b"NOTFERRY", b"PING", b"bad-header", b""], "BAD_FRAME"),
    "mismatch": (
        [b"FERRY01", b"SEND", b"bad-count", b'{"queue":"%s","messages":3}', b"one", b"two"],
        "BAD_FRAME",
    ),
}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write(f"usage: {argv[0]} <endpoint> <queue>\n")
        return 2
    endpoint, queue = argv[1], argv[2]
    summary: dict[str, object] = {}
    reply_headers: list[str] = []
    problems: list[str] = []
    try:
        with FerryClient(endpoint, timeout_ms=5000) as client:
            client.hello(client="ferry-python-malformed/1.0")
            for name, (frames, expected) in CASES.items():
                frames = [f.replace(b"%s", queue.encode()) for f in frames]
                reply = client.raw_request(frames)
                reply_headers.append(reply[0].decode("ascii", "replace"))
                kind = reply[1] if len(reply) > 1 else b""
                args = json.loads(reply[3]) if len(reply) > 3 and reply[3] else {}
                if kind == b"ERROR":
                    code = args.get("code")
                else:
                    code = "<" + kind.decode("ascii", "replace") + ">"
                summary[name] = code
                if code != expected:
                    problems.append(f"{name}: expected ERROR {expected}, got {reply!r}")
            # The broker keeps serving after errors: a normal request on the same socket.
            summary["sent_after"] = list(client.send(queue, [b"after-malformed"]))
            client.ping()
    except Exception as e:  # noqa: BLE001 - report any failure and exit non-zero
        sys.stderr.write(f"malformed.py: {type(e).__name__}: {e}\n")
        return 1
    summary["reply_headers"] = reply_headers
    print(json.dumps(summary), flush=True)
    if problems:
        sys.stderr.write("malformed.py: " + "; ".join(problems) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
