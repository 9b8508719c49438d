"""cheroot, bounded in time and per client, so that a few slow or greedy connections cannot hold
every thread and leave `/health/live` unanswered.

cheroot's own timeout applies to each read, so a client sending a byte every few seconds holds a
thread for ever (slowloris). Here a request must arrive whole, headers and body, within
`READ_DEADLINE_S` of its first byte, or its connection is shut. A request that has been arriving
for more than `SLOW_AFTER_S` while its thread waits for the client's next bytes is slow: one address may have at most
`MAX_SLOW_PER_CLIENT` of them and all addresses together `MAX_SLOW` (half the threads), the
newer ones are shut, so that many addresses at once still leave threads for quick requests (a
burst of quick requests, or requests slow because this device is busy and their thread has not
run, never count). The body is
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
from cheroot.makefile import MakeFile

from appliance.api.app import BODY_TOO_LARGE, MAX_BODY_BYTES

log = logging.getLogger(__name__)
READ_DEADLINE_S = 10.0
MAX_SLOW_PER_CLIENT = 4
MAX_SLOW = 8
SLOW_AFTER_S = 2.0  # a request still arriving after this long, its bytes all read, is a slow client's
_WATCH_INTERVAL_S = 0.25
_REPORT_INTERVAL_S = 60.0


class RequestsArriving:
    """The requests being received, each with its deadline; one thread shuts those past it."""

    def __init__(self, deadline_s: float = READ_DEADLINE_S, per_client: int = MAX_SLOW_PER_CLIENT,
                 in_all: int = MAX_SLOW) -> None:  # fmt: skip
        self.deadline_s, self.per_client, self.in_all = deadline_s, per_client, in_all
        self._lock = threading.Lock()
        self._arriving: dict[int, tuple[_ReadWatch, str, float]] = {}  # by id(connection): client, began
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="api-deadlines", daemon=True)
        self._unreported, self._reported_at = 0, float("-inf")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def begin(self, connection: server.HTTPConnection) -> None:
        with self._lock:
            watch = cast(_BoundedConnection, connection).watch
            self._arriving[id(connection)] = (watch, str(connection.remote_addr), time.monotonic())

    def end(self, connection: server.HTTPConnection) -> None:
        with self._lock:
            self._arriving.pop(id(connection), None)

    def _watch(self) -> None:
        while not self._stop.wait(_WATCH_INTERVAL_S):
            with self._lock:
                dropped = self._overdue(time.monotonic())
                for key in dropped:
                    del self._arriving[key]
            for watch, client, why in dropped.values():
                self._report(client, why)
                with contextlib.suppress(OSError):  # closed meanwhile
                    socket.socket.shutdown(watch.sock, socket.SHUT_RDWR)  # the base method: TLS sockets too

    def _report(self, client: str, why: str) -> None:
        """A warning for the first drop, then at most one a minute with the count: an attack
        must not flood the log."""
        self._unreported += 1
        if time.monotonic() - self._reported_at >= _REPORT_INTERVAL_S:
            log.warning("api: dropped %d request(s) since the last report; the latest from %s: %s",
                        self._unreported, client, why)  # fmt: skip
            self._unreported, self._reported_at = 0, time.monotonic()

    def _overdue(self, now: float) -> dict[int, tuple[_ReadWatch, str, str]]:
        """The requests to drop: past their deadline, or slow ones beyond a client's first few or
        beyond the first few of all clients."""
        dropped = {}
        kept = 0
        slow_by_client: dict[str, int] = {}
        for key, (watch, client, began) in sorted(self._arriving.items(), key=lambda item: item[1][2]):
            if now - began > self.deadline_s:
                dropped[key] = (watch, client, f"it did not arrive whole in {self.deadline_s:.0f} s")
            elif now - began > SLOW_AFTER_S and watch.waiting_for_client(now):
                slow_by_client[client] = slow_by_client.get(client, 0) + 1
                if slow_by_client[client] > self.per_client:
                    dropped[key] = (watch, client, f"more than {self.per_client} slow requests at once")
                elif kept >= self.in_all:
                    dropped[key] = (watch, client, f"more than {self.in_all} slow requests at once from all clients")
                else:
                    kept += 1
        return dropped


class _ReadWatch:
    """A connection's socket as its request reader sees it, noting since when a read waits."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._reading_since: float | None = None

    def recv_into(self, buffer: Any, *args: Any) -> int:
        self._reading_since = time.monotonic()
        try:
            return self.sock.recv_into(buffer, *args)
        finally:
            self._reading_since = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)

    def waiting_for_client(self, now: float) -> bool:
        """Whether the thread has waited in a read for a while with nothing to read: a request
        slow because this device is busy (its thread has not run, its bytes wait unread) is not
        the client's doing."""
        since = self._reading_since
        if since is None or now - since < _WATCH_INTERVAL_S:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
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

    def __init__(self, server_: server.HTTPServer, sock: socket.socket, makefile: Any = MakeFile) -> None:
        super().__init__(server_, sock, makefile)
        self.watch = _ReadWatch(sock)
        self.rfile = makefile(self.watch, "rb", self.rbufsize)  # reads go through the watch


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
