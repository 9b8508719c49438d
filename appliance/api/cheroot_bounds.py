"""cheroot, bounded in time and per client, so that a few slow or greedy connections cannot hold
every thread and leave `/health/live` unanswered.

cheroot's own timeout applies to each read, so a client sending a byte every few seconds holds a
thread for ever (slowloris). Here a request must arrive whole, headers and body, within
`READ_DEADLINE_S` of its first byte, or its connection is shut; and one address may have at most
`MAX_SLOW_PER_CLIENT` requests that have been arriving for more than `SLOW_AFTER_S` with all
their bytes so far read (the newer ones are shut; a burst of quick requests, or requests slow
because this device is busy, never count). The body is
read here, bounded by `MAX_BODY_BYTES` also when it comes chunked, before the app runs. Written
by hand: cheroot has no total deadline, and a reverse proxy would be one more process to ship."""

from __future__ import annotations

import contextlib
import io
import logging
import select
import socket
import threading
import time
from typing import Any, cast

from cheroot import errors, server, wsgi

from appliance.api.app import BODY_TOO_LARGE, MAX_BODY_BYTES

log = logging.getLogger(__name__)
READ_DEADLINE_S = 10.0
MAX_SLOW_PER_CLIENT = 4
SLOW_AFTER_S = 2.0  # a request still arriving after this long, its bytes all read, is a slow client's
_WATCH_INTERVAL_S = 0.25
_REPORT_INTERVAL_S = 60.0


class RequestsArriving:
    """The requests being received, each with its deadline; one thread shuts those past it."""

    def __init__(self, deadline_s: float = READ_DEADLINE_S, per_client: int = MAX_SLOW_PER_CLIENT) -> None:
        self.deadline_s, self.per_client = deadline_s, per_client
        self._lock = threading.Lock()
        self._arriving: dict[int, tuple[socket.socket, str, float]] = {}  # by id(connection): client, began
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="api-deadlines", daemon=True)
        self._unreported, self._reported_at = 0, float("-inf")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def begin(self, connection: server.HTTPConnection) -> None:
        with self._lock:
            self._arriving[id(connection)] = (connection.socket, str(connection.remote_addr), time.monotonic())

    def end(self, connection: server.HTTPConnection) -> None:
        with self._lock:
            self._arriving.pop(id(connection), None)

    def _watch(self) -> None:
        while not self._stop.wait(_WATCH_INTERVAL_S):
            with self._lock:
                dropped = self._overdue(time.monotonic())
                for key in dropped:
                    del self._arriving[key]
            for sock, client, why in dropped.values():
                self._report(client, why)
                with contextlib.suppress(OSError):  # closed meanwhile
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the base method: TLS sockets too

    def _report(self, client: str, why: str) -> None:
        """A warning for the first drop, then at most one a minute with the count: an attack
        must not flood the log."""
        self._unreported += 1
        if time.monotonic() - self._reported_at >= _REPORT_INTERVAL_S:
            log.warning("api: dropped %d request(s) since the last report; the latest from %s: %s",
                        self._unreported, client, why)  # fmt: skip
            self._unreported, self._reported_at = 0, time.monotonic()

    def _overdue(self, now: float) -> dict[int, tuple[socket.socket, str, str]]:
        """The requests to drop: past their deadline, or a client's slow ones beyond its first few."""
        dropped = {}
        slow_by_client: dict[str, list[int]] = {}
        for key, (sock, client, began) in sorted(self._arriving.items(), key=lambda item: item[1][2]):
            if now - began > self.deadline_s:
                dropped[key] = (sock, client, f"it did not arrive whole in {self.deadline_s:.0f} s")
            elif now - began > SLOW_AFTER_S and _waiting_for_client(sock):
                slow_by_client.setdefault(client, []).append(key)
        for client, keys in slow_by_client.items():
            for key in keys[self.per_client :]:
                dropped[key] = (self._arriving[key][0], client, f"more than {self.per_client} slow requests at once")
        return dropped


def _waiting_for_client(sock: socket.socket) -> bool:
    """Whether everything the client sent has been read: a request slow because this device is
    busy (its bytes wait unread) is not the client's doing."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):  # closed meanwhile
        return False
    return not readable


class _BoundedRequest(server.HTTPRequest):
    def parse_request(self) -> None:
        arriving = cast(BoundedServer, self.server).arriving
        arriving.begin(self.conn)
        try:
            super().parse_request()
        finally:
            if not self.ready:
                arriving.end(self.conn)


class _BoundedConnection(server.HTTPConnection):
    RequestHandlerClass = _BoundedRequest


class _BufferedGateway(wsgi.Gateway_10):
    """Reads the whole body before the app runs; one over the limit reaches the app as a flag,
    so the app answers it in its own error shape."""

    def respond(self) -> None:
        request = self.req
        try:
            body = self._body()
        finally:
            cast(BoundedServer, request.server).arriving.end(request.conn)
        env: dict[str, Any] = self.env
        env["wsgi.input"], env["wsgi.input_terminated"] = io.BytesIO(body or b""), False
        env["CONTENT_LENGTH"] = str(len(body or b""))
        env.pop("HTTP_TRANSFER_ENCODING", None)
        if body is None:
            env[BODY_TOO_LARGE] = True
            request.close_connection = True  # the rest of the body is not read
        super().respond()

    def _body(self) -> bytes | None:
        request = self.req
        if request.chunked_read:
            try:
                return bytes(server.ChunkedRFile(request.conn.rfile, MAX_BODY_BYTES).read())
            except errors.MaxSizeExceeded:
                return None
            except OSError as error:  # a chunk declared over the limit: cheroot's IOError, without errno
                if error.errno is not None:
                    raise
                return None
        if int(request.inheaders.get(b"Content-Length", 0)) > MAX_BODY_BYTES:
            return None
        return bytes(request.rfile.read())


class BoundedServer(wsgi.Server):
    ConnectionClass = _BoundedConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gateway = _BufferedGateway
        self.arriving = RequestsArriving()

    def prepare(self) -> None:
        super().prepare()
        self.arriving.start()

    def stop(self) -> None:
        self.arriving.stop()
        super().stop()
