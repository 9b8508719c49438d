"""A channel's sender: its own thread delivers the channel's spool, oldest message first, so a
slow or unreachable channel holds up nothing but itself.

A message leaves the spool only once delivered (at least once: a message sent just before the
appliance died is sent again, with the same id). A channel that is away is retried with
exponential backoff; one that refuses a message drops that message; one that refuses the channel
(its credentials, its address) waits for the profile to change. Each change of the channel's
health is logged once."""

from __future__ import annotations

import logging
import threading
import time

from appliance.runtime.outputs.channels.base import ChannelRefused, Message, MessageRefused, Transport, TryLater
from appliance.runtime.outputs.spool import Spool
from appliance.runtime.state import OutputStats

log = logging.getLogger(__name__)
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
IDLE_POLL_S = 1.0
JOIN_TIMEOUT_S = 2.0


class ChannelSender:
    def __init__(self, transport: Transport, spool: Spool) -> None:
        self.transport = transport
        self.spool = spool
        self.delivered = self.rejected = self.attempts_failed = 0
        self.problem: str | None = None
        self._refused: str | None = None
        self._backoff_s = 0.0
        self._draining = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"send-{transport.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.transport.name

    def start(self) -> None:
        log.info("%s: %d message(s) waiting", self.name, self.spool.count)
        self._thread.start()

    def put(self, message: Message, *, not_before: float = 0.0) -> int:
        """Keep a message for delivery; its spool row."""
        row = self.spool.put(message.kind, message.encode(), time.time(), not_before=not_before)
        self._wake.set()
        return row

    def amend(self, row: int, message: Message, *, not_before: float = 0.0) -> None:
        """Change a message still waiting (a snapshot came for it)."""
        if self.spool.amend(row, message.encode(), not_before=not_before):
            self._wake.set()

    def drain(self, deadline: float) -> None:
        """Before stopping: send what waits, held-back messages too, until `deadline` (monotonic)."""
        self._draining = True
        self._wake.set()
        while self.spool.count and self.problem is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._backoff_s = 0.0
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(JOIN_TIMEOUT_S)
        self.spool.close()

    @property
    def stats(self) -> OutputStats:
        lost = self.spool.dropped + self.rejected
        return OutputStats(
            self.name, queued=0, handled=self.delivered + self.rejected, dropped=self.spool.dropped,
            failures=self.attempts_failed, lost=lost, problem=self.problem, delivered=self.delivered,
            spooled=self.spool.count,
        )  # fmt: skip

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self._step()
            if self._backoff_s > 0:  # an outage: new messages do not cut the backoff short
                self._stop.wait(wait)
            elif wait > 0:
                self._wake.wait(wait)
                self._wake.clear()

    def _step(self) -> float:
        """Try the oldest message; how long to wait before the next step."""
        if self._refused is not None:
            return IDLE_POLL_S
        spooled = self.spool.oldest()
        if spooled is None:
            return IDLE_POLL_S
        if (held := spooled.not_before - time.time()) > 0 and not self._draining:
            return min(held, IDLE_POLL_S)
        try:
            self.transport.send(Message.decode(spooled.payload))
        except TryLater as failure:
            self.attempts_failed += 1
            self._backoff_s = min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, 2 * self._backoff_s))
            self._set_problem(f"unreachable: {failure}", logging.WARNING)
            return self._backoff_s
        except MessageRefused as failure:
            self.rejected += 1
            log.error("%s refused message %s (%s); it is dropped", self.name, spooled.topic, failure)
        except ChannelRefused as failure:
            self._refused = str(failure)
            self._set_problem(f"refused: {failure}; fix the profile (nothing is sent until it changes)", logging.ERROR)
            return IDLE_POLL_S
        else:
            self.delivered += 1
        self.spool.remove([spooled.row])
        self._backoff_s = 0.0
        self._set_problem(None, logging.INFO)
        return 0.0

    def _set_problem(self, problem: str | None, level: int) -> None:
        if problem == self.problem:
            return
        if problem is None:
            log.info("%s: delivering again (%d message(s) waiting)", self.name, self.spool.count)
        else:
            log.log(level, "%s: %s (%d message(s) waiting)", self.name, problem, self.spool.count)
        self.problem = problem
