"""sd_notify(3): READY, WATCHDOG and STATUS messages to systemd; nothing without NOTIFY_SOCKET."""

from __future__ import annotations

import contextlib
import os
import socket


class SystemdNotifier:
    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # abstract namespace socket
            address = "\0" + address[1:]
        self.address = address or None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str) -> None:
        """Send `KEY=value` lines, e.g. notify(READY="1", STATUS="running")."""
        if self.address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
            sock.setblocking(False)  # a listener that stopped reading must not stop the supervisor
            sock.sendto(message, self.address)  # if systemd went away there is nobody to tell
