"""A small Python client for Ferry's wire protocol, version 1 (``FERRY01``).

Written from ``docs/protocol.md`` alone. Standard library + pyzmq (Debian:
``python3-zmq``), Python 3.11.

Every message, in both directions, is a multipart ZeroMQ message::

    frame 0  b"FERRY01"                  header: protocol name + version
    frame 1  command / reply kind        ASCII (HELLO, SEND, ... / OK, ERROR, PONG, DELIVER)
    frame 2  request id                  0-64 opaque bytes, echoed in the reply (empty in DELIVER)
    frame 3  arguments                   a JSON object; an empty frame means {}
    frame 4+ payload                     message bodies, split as the arguments describe

The client uses one DEALER socket. Requests carry ids from a counter; a request waits for
the reply with its id while ``DELIVER`` messages (and replies to other requests) that arrive
in the meantime are buffered. ``ERROR`` replies raise :class:`FerryError`, whose ``.code``
is the broker's stable error code. While waiting, the client sends a ``PING`` whenever it has
sent nothing for ``heartbeatMs`` so that the broker keeps the session open.

Example::

    with FerryClient("tcp://127.0.0.1:7400") as c:
        c.hello(client="example/1.0")
        ids = c.send("jobs", [b"job-1", Message([b"part-1", b"part-2"], priority=5)])
        c.consume("jobs", prefetch=10)
        batch = c.receive(timeout_ms=1000)
        for d in batch:
            print(d.id, d.attempt, d.frames, d.headers)
        c.ack([d.id for d in batch])
"""

from __future__ import annotations

import collections
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import zmq

__all__ = [
    "PROTOCOL_HEADER",
    "FerryClient",
    "FerryError",
    "FerryProtocolError",
    "FerryTimeout",
    "Message",
    "Delivery",
    "SendResult",
    "Assignment",
]

PROTOCOL_HEADER = b"FERRY01"

# Per-message SEND fields (docs/protocol.md §3). Python-style names map to the wire names;
# the wire names themselves are accepted too.
_MESSAGE_FIELDS = {
    "headers": "headers",
    "priority": "priority",
    "delay_ms": "delayMs",
    "delayMs": "delayMs",
    "ttl_ms": "ttlMs",
    "ttlMs": "ttlMs",
    "dedup_key": "dedupKey",
    "dedupKey": "dedupKey",
}


class FerryError(Exception):
    """The broker answered ``ERROR``. ``code`` is stable (compare it, never the message)."""

    def __init__(self, code: str, message: str = "", command: str | None = None) -> None:
        self.code = code
        self.message = message
        self.command = command
        where = f"{command}: " if command else ""
        super().__init__(f"{where}{code}: {message}" if message else f"{where}{code}")


class FerryProtocolError(Exception):
    """The broker sent something this client cannot parse as ``FERRY01``."""


class FerryTimeout(TimeoutError):
    """No reply arrived within the client's timeout."""


@dataclass
class Message:
    """One message to send: one or more frames plus optional per-message fields."""

    frames: bytes | str | Sequence[bytes | str]
    headers: dict[str, str] | None = None
    priority: int | None = None
    delay_ms: float | None = None
    ttl_ms: float | None = None
    dedup_key: str | None = None


@dataclass
class Delivery:
    """A delivered message (docs/protocol.md §5)."""

    id: str
    attempt: int
    frames: list[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    consumer: str = ""
    priority: int = 0
    enqueued_at: int | None = None
    #: The spec object exactly as the broker sent it (unknown fields included).
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def body(self) -> bytes:
        """The first frame (the whole body for single-frame messages)."""
        return self.frames[0] if self.frames else b""


class SendResult(list[str]):
    """The ids of a SEND, in order (a ``list[str]``), plus ``duplicates`` and ``replayed``."""

    def __init__(self, ids: Iterable[str], duplicates: Iterable[int] = (), replayed: bool = False):
        super().__init__(ids)
        self.duplicates: list[int] = list(duplicates)
        self.replayed = replayed


@dataclass
class Assignment:
    """A job handed to one of this client's workers (``ASSIGN``, docs/protocol.md §8)."""

    id: str
    worker: str
    service: str
    attempt: int
    deadline: int
    params: list[bytes]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Incoming:
    kind: str
    request_id: bytes
    args: dict[str, Any]
    payload: list[bytes]


def _to_bytes(frame: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(frame, str):
        return frame.encode("utf-8")
    return bytes(frame)


def _frames(value: bytes | str | Sequence[bytes | str]) -> list[bytes]:
    """One frame for bytes or str, several for a sequence of them."""
    if isinstance(value, (bytes, bytearray, memoryview, str)):
        return [_to_bytes(value)]
    return [_to_bytes(v) for v in value]


def _split_messages(
    args: dict[str, Any], payload: list[bytes]
) -> list[tuple[dict[str, Any], list[bytes]]]:
    """Split payload frames into messages as ``args["messages"]`` describes (§3)."""
    spec = args.get("messages", [])
    if isinstance(spec, int):
        specs: list[dict[str, Any]] = [{} for _ in range(spec)]
    elif isinstance(spec, list):
        specs = [s if isinstance(s, dict) else {} for s in spec]
    else:
        raise FerryProtocolError(f"bad 'messages' field: {spec!r}")
    out = []
    pos = 0
    for s in specs:
        n = int(s.get("frames", 1))
        if n < 1 or pos + n > len(payload):
            raise FerryProtocolError("payload frames do not match the message specs")
        out.append((s, payload[pos : pos + n]))
        pos += n
    if pos != len(payload):
        raise FerryProtocolError(f"{len(payload) - pos} payload frames left over")
    return out


class FerryClient:
    """A Ferry protocol client on one ZeroMQ DEALER socket. Not thread-safe."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_ms: int = 10_000,
        context: zmq.Context | None = None,
    ) -> None:
        """Connects (ZeroMQ connects lazily; nothing is sent until :meth:`hello`).

        ``timeout_ms`` bounds how long each request waits for its reply.
        """
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self._own_context = context is None
        self._ctx = context or zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self._ids = itertools.count(1)
        self._replies: dict[bytes, _Incoming] = {}
        self._discard: set[bytes] = set()  # ids of heartbeat PINGs whose PONG nobody waits for
        self._deliveries: collections.deque[Delivery] = collections.deque()
        self._assignments: collections.deque[Assignment] = collections.deque()
        #: Ids of jobs the broker revoked (cancelled or taken back) from our workers.
        self.revoked: set[str] = set()
        self._last_sent = time.monotonic()
        self.heartbeat_ms: int | None = None
        self.session: str | None = None
        self.limits: dict[str, Any] = {}
        self.server_info: dict[str, Any] = {}
        self._session_lost = False  # a heartbeat PING was answered NO_SESSION
        #: Payload frames of the last OK reply returned by :meth:`request` (e.g. PEEK).
        self.last_payload: list[bytes] = []
        self.closed = False

    # ---------------------------------------------------------------- context manager

    def __enter__(self) -> FerryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- commands

    def hello(
        self, *, heartbeat_ms: int | None = None, client: str | None = None
    ) -> dict[str, Any]:
        """Opens a session (must come first). Returns the broker's HELLO reply."""
        args: dict[str, Any] = {}
        if heartbeat_ms is not None:
            args["heartbeatMs"] = heartbeat_ms
        if client is not None:
            args["client"] = client
        reply = self.request("HELLO", args)
        # A new session replaces the old one (§4): what it had delivered can no longer be acked.
        self._deliveries.clear()
        self._session_lost = False
        self.session = reply.get("session")
        self.heartbeat_ms = reply.get("heartbeatMs", heartbeat_ms or 2000)
        self.limits = reply.get("limits", {})
        self.server_info = reply
        return reply

    def ping(self) -> float:
        """Sends PING and waits for PONG. Returns the round trip in milliseconds."""
        start = time.monotonic()
        self.request("PING", {})
        return (time.monotonic() - start) * 1000.0

    def send(
        self,
        queue: str,
        bodies: Sequence[bytes | str | Sequence[bytes | str] | Message],
        *,
        request_key: str | None = None,
        **defaults: Any,
    ) -> SendResult:
        """Stores several messages with one SEND request; returns their ids in order.

        Each item of ``bodies`` is one message: ``bytes``/``str`` (one frame), a list or tuple
        of frames (a multi-frame message), or a :class:`Message` with per-message fields.
        ``defaults`` (``headers``, ``priority``, ``delay_ms``, ``ttl_ms``, ``dedup_key``; the
        wire names ``delayMs`` etc. work too) apply to every message that does not set the
        field itself. ``request_key`` is the idempotency key for the whole request.
        The reply arrives only after the broker committed the messages.
        """
        base = self._message_fields(defaults)
        specs: list[dict[str, Any]] = []
        payload: list[bytes] = []
        for item in bodies:
            spec = dict(base)
            if isinstance(item, Message):
                spec.update(
                    self._message_fields(
                        {
                            k: getattr(item, k)
                            for k in ("headers", "priority", "delay_ms", "ttl_ms", "dedup_key")
                            if getattr(item, k) is not None
                        }
                    )
                )
                frames = item.frames
            else:
                frames = item
            if isinstance(frames, (bytes, bytearray, memoryview, str)):
                frame_list = [_to_bytes(frames)]
            else:
                frame_list = [_to_bytes(f) for f in frames]
            if not frame_list:
                raise ValueError("a message needs at least one frame")
            if len(frame_list) != 1:
                spec["frames"] = len(frame_list)
            specs.append(spec)
            payload.extend(frame_list)
        args: dict[str, Any] = {"queue": queue}
        # The short form "messages": N when no message has fields of its own (§3).
        args["messages"] = specs if any(specs) else len(specs)
        if request_key is not None:
            args["requestKey"] = request_key
        reply = self.request("SEND", args, payload)
        return SendResult(
            reply.get("ids", []), reply.get("duplicates", []), bool(reply.get("replayed", False))
        )

    def consume(
        self,
        queue: str,
        prefetch: int | None = None,
        *,
        ack_timeout_ms: int | None = None,
        consumer: str | None = None,
    ) -> str:
        """Starts a consumer on ``queue``; returns its tag. Messages arrive via :meth:`receive`."""
        args: dict[str, Any] = {"queue": queue}
        if prefetch is not None:
            args["prefetch"] = prefetch
        if ack_timeout_ms is not None:
            args["ackTimeoutMs"] = ack_timeout_ms
        if consumer is not None:
            args["consumer"] = consumer
        return str(self.request("CONSUME", args)["consumer"])

    def cancel(self, consumer: str) -> None:
        """Stops a consumer. Messages it holds can still be acked or nacked."""
        self.request("CANCEL", {"consumer": consumer})

    def receive(self, timeout_ms: int = 1000, max_messages: int | None = None) -> list[Delivery]:
        """Returns delivered messages, waiting up to ``timeout_ms`` for the first one.

        Returns everything already buffered (up to ``max_messages``) at once; an empty list
        means nothing arrived in time. Raises :class:`FerryError` ``NO_SESSION`` if a heartbeat
        found that the broker dropped the session (restart or timeout; §6: HELLO again).
        """
        deadline = time.monotonic() + timeout_ms / 1000.0
        while not self._deliveries and not self._session_lost:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._pump(remaining)
        # Drain whatever else is already waiting on the socket, without blocking.
        self._pump(0)
        out: list[Delivery] = []
        while self._deliveries and (max_messages is None or len(out) < max_messages):
            out.append(self._deliveries.popleft())
        if not out and self._session_lost:
            self._session_lost = False
            raise FerryError("NO_SESSION", "the broker dropped the session; send HELLO again")
        return out

    def ack(self, ids: Iterable[str]) -> dict[str, Any]:
        """Acks messages. Returns ``{"done": n, "failed": [{"id", "code"}, ...]}``."""
        return self.request("ACK", {"ids": [str(i) for i in ids]})

    def nack(
        self, ids: Iterable[str], delay_ms: float | None = None, dead: bool = False
    ) -> dict[str, Any]:
        """Gives messages back: after ``delay_ms`` (default: the queue's backoff), or to the
        dead letters with ``dead=True``. Returns like :meth:`ack`."""
        args: dict[str, Any] = {"ids": [str(i) for i in ids]}
        if delay_ms is not None:
            args["delayMs"] = delay_ms
        if dead:
            args["dead"] = True
        return self.request("NACK", args)

    def extend(self, ids: Iterable[str], ms: int) -> dict[str, Any]:
        """Pushes the ack deadline of held messages to at least ``ms`` from now."""
        return self.request("EXTEND", {"ids": [str(i) for i in ids], "ms": ms})

    def stats(self, queue: str | None = None) -> dict[str, Any]:
        """Returns ``{"broker": {...}, "queues": [{...}]}`` (one queue if ``queue`` is given)."""
        return self.request("STATS", {} if queue is None else {"queue": queue})

    # ---------------------------------------------------------------- jobs (§8)

    def submit(
        self, service: str, params: bytes | str | Sequence[bytes | str], **fields: Any
    ) -> dict[str, Any]:
        """Stores a job (durable) and returns its job object; ``fields`` are SUBMIT arguments
        (``priority``, ``delayMs``, ``ttlMs``, ``maxAttempts``, ``dedupKey``, ``headers``)."""
        return self.request("SUBMIT", {"service": service, **fields}, _frames(params))

    def call(
        self,
        service: str,
        params: bytes | str | Sequence[bytes | str],
        *,
        timeout_ms: int | None = None,
        **fields: Any,
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Runs a job and waits for it: returns (job object, result frames). A job that does not
        end ``done`` raises :class:`FerryError` (``JOB_FAILED``, ``JOB_CANCELLED``, ...)."""
        args: dict[str, Any] = {"service": service, **fields}
        wait = self.timeout_ms
        if timeout_ms is not None:
            args["timeoutMs"] = timeout_ms
            wait = timeout_ms + self.timeout_ms
        job = self.request("CALL", args, _frames(params), timeout_ms=wait)
        return job, self.last_payload

    def job(self, job_id: str) -> tuple[dict[str, Any], list[bytes]]:
        """A job's state now: (job object, result frames once done)."""
        job = self.request("JOB", {"id": job_id})
        return job, self.last_payload

    def worker(self, services: Sequence[str], *, concurrency: int = 1, tag: str | None = None) -> str:
        """Registers a worker for ``services``; returns its tag. Jobs then arrive as
        :class:`Assignment` objects from :meth:`next_assignment`."""
        args: dict[str, Any] = {"services": list(services), "concurrency": concurrency}
        if tag is not None:
            args["worker"] = tag
        return str(self.request("WORKER", args)["worker"])

    def next_assignment(self, timeout_ms: int = 1000) -> Assignment | None:
        """The next job for one of this client's workers, or None after ``timeout_ms``."""
        self._check_open()
        deadline = time.monotonic() + timeout_ms / 1000.0
        while not self._assignments:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._pump(remaining)
        return self._assignments.popleft()

    def complete(self, job_id: str, result: bytes | str | Sequence[bytes | str]) -> None:
        self.request("COMPLETE", {"id": job_id}, _frames(result))

    def fail(self, job_id: str, code: str, message: str, *, retry: bool = True) -> None:
        self.request("FAIL", {"id": job_id, "code": code, "message": message, "retry": retry})

    def progress(
        self,
        job_id: str,
        progress: Any = None,
        partial: bytes | str | Sequence[bytes | str] | None = None,
    ) -> None:
        """Reports progress (any JSON) and/or a partial result for a running job."""
        args: dict[str, Any] = {"id": job_id}
        if progress is not None:
            args["progress"] = progress
        if partial is not None:
            args["partial"] = True
        self.request("PROGRESS", args, _frames(partial) if partial is not None else ())

    def close(self) -> None:
        """Ends the session with BYE (best effort) and closes the socket."""
        if self.closed:
            return
        try:
            if self.session is not None:
                self.request("BYE", {}, timeout_ms=min(self.timeout_ms, 2000))
        except (FerryError, FerryTimeout, FerryProtocolError, zmq.ZMQError):
            pass
        finally:
            self.closed = True
            self.session = None
            self._sock.close(linger=0)
            if self._own_context:
                self._ctx.term()

    # ---------------------------------------------------------------- generic request

    def request(
        self,
        command: str,
        args: dict[str, Any] | None = None,
        payload: Sequence[bytes | str] = (),
        *,
        timeout_ms: int | None = None,
    ) -> dict[str, Any]:
        """Sends any command and returns the result object of its ``OK`` (or ``PONG``) reply.

        Raises :class:`FerryError` for ``ERROR`` and :class:`FerryTimeout` when no reply
        arrives within ``timeout_ms`` (default: the client's). Reply payload frames, if any,
        are in ``self.last_payload``.
        """
        reply = self._roundtrip(command, args or {}, payload, timeout_ms)
        if reply.kind == "ERROR":
            if reply.args.get("code") == "NO_SESSION":
                self.session = None  # the broker restarted or dropped us: HELLO again (§6)
            raise FerryError(
                str(reply.args.get("code", "UNKNOWN")), str(reply.args.get("message", "")), command
            )
        if reply.kind not in ("OK", "PONG"):
            raise FerryProtocolError(f"unexpected reply kind {reply.kind!r} to {command}")
        if command == "BYE":
            self.session = None
        self.last_payload = reply.payload
        return reply.args

    def raw_request(
        self, frames: Sequence[bytes | str], timeout_ms: int | None = None
    ) -> list[bytes]:
        """Testing aid: sends ``frames`` exactly as given (malformed is fine) and returns the
        next incoming message that is not a ``DELIVER``, as raw frames.

        Only use it with no other request in flight: the reply cannot be matched by id.
        """
        self._check_open()
        self._sock.send_multipart([_to_bytes(f) for f in frames])
        self._last_sent = time.monotonic()
        deadline = time.monotonic() + (timeout_ms or self.timeout_ms) / 1000.0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._sock.poll(int(remaining * 1000) + 1, zmq.POLLIN):
                raise FerryTimeout("no reply to the raw request")
            msg = self._sock.recv_multipart()
            if len(msg) >= 2 and msg[0] == PROTOCOL_HEADER and msg[1] == b"DELIVER":
                self._dispatch(msg)
                continue
            return msg

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _message_fields(fields: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in fields.items():
            if value is None:
                continue
            wire = _MESSAGE_FIELDS.get(key)
            if wire is None:
                raise ValueError(f"unknown message field {key!r}")
            out[wire] = value
        return out

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the client is closed")

    def _new_request_id(self) -> bytes:
        return b"%08x" % next(self._ids)

    def _send(
        self,
        command: str,
        request_id: bytes,
        args: dict[str, Any],
        payload: Sequence[bytes | str],
    ) -> None:
        frames = [
            PROTOCOL_HEADER,
            command.encode("ascii"),
            request_id,
            json.dumps(args, separators=(",", ":")).encode("utf-8") if args else b"",
            *(_to_bytes(f) for f in payload),
        ]
        self._sock.send_multipart(frames)
        self._last_sent = time.monotonic()

    def _roundtrip(
        self,
        command: str,
        args: dict[str, Any],
        payload: Sequence[bytes | str],
        timeout_ms: int | None,
    ) -> _Incoming:
        self._check_open()
        request_id = self._new_request_id()
        self._send(command, request_id, args, payload)
        wait_ms = timeout_ms if timeout_ms is not None else self.timeout_ms
        deadline = time.monotonic() + wait_ms / 1000.0
        while request_id not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._discard.add(request_id)  # drop the reply if it still comes
                raise FerryTimeout(f"no reply to {command} within the timeout")
            self._pump(remaining)
        return self._replies.pop(request_id)

    def _pump(self, max_wait_s: float) -> None:
        """Receives and dispatches incoming messages: waits up to ``max_wait_s`` for the first,
        then takes whatever else is already queued. Sends a heartbeat PING when due."""
        self._heartbeat()
        wait_ms = max(0, int(max_wait_s * 1000))
        if self.heartbeat_ms:
            wait_ms = min(wait_ms, self.heartbeat_ms)
        if not self._sock.poll(wait_ms, zmq.POLLIN):
            self._heartbeat()
            return
        for _ in range(10_000):  # bounded drain
            try:
                msg = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self._dispatch(msg)
        self._heartbeat()

    def _heartbeat(self) -> None:
        """Sends PING if nothing was sent for ``heartbeatMs``; any command keeps a session alive."""
        if self.session is None or not self.heartbeat_ms:
            return
        if (time.monotonic() - self._last_sent) * 1000.0 >= self.heartbeat_ms:
            request_id = self._new_request_id()
            self._discard.add(request_id)
            self._send("PING", request_id, {}, ())

    def _dispatch(self, msg: list[bytes]) -> None:
        if len(msg) < 4:
            raise FerryProtocolError(f"message with {len(msg)} frames (need at least 4)")
        if msg[0] != PROTOCOL_HEADER:
            raise FerryProtocolError(f"unexpected header {msg[0]!r}")
        kind = msg[1].decode("ascii", "replace")
        try:
            args = json.loads(msg[3]) if msg[3] else {}
        except ValueError as e:
            raise FerryProtocolError(f"{kind}: arguments are not JSON: {e}") from None
        if not isinstance(args, dict):
            raise FerryProtocolError(f"{kind}: arguments are not a JSON object")
        payload = msg[4:]
        if kind == "DELIVER":
            consumer = str(args.get("consumer", ""))
            for spec, frames in _split_messages(args, payload):
                if "id" not in spec:
                    raise FerryProtocolError("a delivered message has no id")
                self._deliveries.append(
                    Delivery(
                        id=str(spec["id"]),
                        attempt=int(spec.get("attempt", 1)),
                        frames=frames,
                        headers=dict(spec.get("headers") or {}),
                        consumer=consumer,
                        priority=int(spec.get("priority", 0)),
                        enqueued_at=spec.get("enqueuedAt"),
                        spec=spec,
                    )
                )
            return
        if kind == "ASSIGN":
            self._assignments.append(
                Assignment(
                    id=str(args["id"]),
                    worker=str(args.get("worker", "")),
                    service=str(args.get("service", "")),
                    attempt=int(args.get("attempt", 1)),
                    deadline=int(args.get("deadline", 0)),
                    params=payload,
                    headers=dict(args.get("headers") or {}),
                )
            )
            return
        if kind == "REVOKE":
            self.revoked.add(str(args.get("id", "")))
            return
        if kind == "EVENT":
            return  # job updates of a streamed CALL or a WATCH: this client does not ask for them
        request_id = msg[2]
        if request_id in self._discard:
            self._discard.discard(request_id)
            if kind == "ERROR" and args.get("code") == "NO_SESSION" and self.session is not None:
                self.session = None
                self._session_lost = True
            return
        self._replies[request_id] = _Incoming(kind, request_id, args, payload)
