"""Failed logins, limited per client address and per user name.

An attempt counts as failed from the moment it is admitted until its password is found right,
so guesses sent in parallel cannot slip past the limit while their passwords are being checked.
Written by hand: Flask-Limiter deducts a failure only once its response is made, so 200 parallel
wrong logins got 17 password checks against a limit of 10."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from appliance.api.errors import ApiError

LIMITS = ((10, 60.0), (50, 3600.0))  # at most this many failures in this many seconds, per key
_LONGEST_S = max(window for _, window in LIMITS)


@dataclass
class Attempt:
    succeeded: bool = False


class LoginGuard:
    def __init__(self, limits: tuple[tuple[int, float], ...] = LIMITS) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._pending: Counter[str] = Counter()

    @contextmanager
    def attempt(self, *keys: str) -> Iterator[Attempt]:
        """Admits one attempt for every key, or raises 429; unless the caller marks it succeeded,
        it is a failure of each key."""
        with self._lock:
            now = time.monotonic()
            self._forget_before(now - _LONGEST_S)
            wait = max(self._wait(key, now) for key in keys)
            if wait > 0:
                raise ApiError(429, "too_many_logins", "too many failed logins; try again later",
                               retry_after_s=math.ceil(wait))  # fmt: skip
            self._pending.update(keys)
        attempt = Attempt()
        try:
            yield attempt
        finally:
            with self._lock:
                self._pending.subtract(keys)
                self._pending += Counter()  # drops the keys at zero
                if not attempt.succeeded:
                    for key in keys:
                        self._failures.setdefault(key, deque()).append(time.monotonic())

    def _wait(self, key: str, now: float) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        failures, pending = self._failures.get(key, deque()), self._pending[key]
        wait = 0.0
        for limit, window in self.limits:
            recent = [moment for moment in failures if now - moment < window]
            over = len(recent) + pending - limit  # this many must leave the window first
            if over >= 0:
                wait = max(wait, recent[over] + window - now if over < len(recent) else 1.0)
        return wait

    def _forget_before(self, moment: float) -> None:
        for key in list(self._failures):
            failures = self._failures[key]
            while failures and failures[0] < moment:
                failures.popleft()
            if not failures:
                del self._failures[key]
