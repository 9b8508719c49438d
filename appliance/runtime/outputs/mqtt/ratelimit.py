"""A token bucket for commands that arrive over MQTT: a burst is taken, a flood is not. Written
here because it is a dozen lines."""

from __future__ import annotations

import time


class TokenBucket:
    """`burst` commands at once, then `per_second` on average."""

    def __init__(self, burst: int, per_second: float) -> None:
        self.burst, self.per_second = burst, per_second
        self.tokens = float(burst)
        self.refused = 0  # since the last `take_refused`
        self._last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.per_second)
        self._last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refused += 1
        return False

    def take_refused(self) -> int:
        """How many were refused since the last call."""
        refused, self.refused = self.refused, 0
        return refused
