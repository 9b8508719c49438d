"""What the HTTP transports (Slack, webhooks) share: one bounded request with urllib, no
redirects followed, and the answer sorted into delivered, later, this message or the channel.
A reply's body is read up to a small bound and never logged (it is the other end's, not ours)."""

from __future__ import annotations

import functools
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from appliance.runtime.outputs.channels.base import ChannelRefused, MessageRefused, TryLater

MAX_REPLY_BYTES = 64 * 1024
CHANNEL_STATUSES = frozenset({401, 403, 404, 405, 410})  # the URL or its credentials are wrong
LATER_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


@functools.lru_cache(maxsize=16)
def _tls_context(ca_file: str | None, modified_ns: int | None) -> ssl.SSLContext:
    """One context per CA file and version of it: loading the system's certificates costs about
    10 ms of CPU, too much to pay on every request of a raw-data feed. SSLContext is thread-safe."""
    return ssl.create_default_context(cafile=ca_file)


def _modified_ns(path: str | None) -> int | None:
    try:
        return Path(path).stat().st_mtime_ns if path else None
    except OSError:
        return None  # create_default_context says what is wrong with it


def request(
    url: str, body: bytes, *, method: str, headers: dict[str, str], timeout_s: float, ca_file: str | None = None,
    where: str,
) -> Reply:  # fmt: skip
    """Send; a 2xx reply, or the failure raised. `where` names the endpoint in messages (a
    secret URL is never shown)."""
    context = _tls_context(ca_file, _modified_ns(ca_file))
    opener = urllib.request.build_opener(_NoRedirects(), urllib.request.HTTPSHandler(context=context))
    outgoing = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with opener.open(outgoing, timeout=timeout_s) as answer:
            return Reply(answer.status, answer.read(MAX_REPLY_BYTES))
    except urllib.error.HTTPError as error:
        status = error.code
        error.close()
        said = f"{where} answered {status} {error.reason}"
        if 300 <= status < 400:
            raise ChannelRefused(f"{where} redirects ({status}); set the URL it redirects to") from None
        if status in CHANNEL_STATUSES:
            raise ChannelRefused(said) from None
        if status in LATER_STATUSES or status >= 500:
            raise TryLater(said) from None
        raise MessageRefused(said) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise ChannelRefused(f"{where}: the certificate is not trusted ({reason.verify_message})") from None
        raise TryLater(f"{where}: {type(reason).__name__}: {reason}") from None
