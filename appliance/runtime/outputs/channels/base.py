"""The transport interface, the message every transport takes, and the three ways a delivery
fails: later (the other end is away), this message (the other end refused it) or the channel
(the profile is wrong: bad credentials, a missing bucket). Transports register themselves by kind."""

from __future__ import annotations

import base64
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from appliance.runtime.serialize import Json


def message_id() -> str:
    """A message's id: the receiver drops one it has seen (delivery is at least once)."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Message:
    """One outgoing message, as kept in a channel's spool. `body` is the machine-readable part
    (an event, a report, a batch); `subject` and `text` are for people."""

    id: str
    kind: str  # alert, report, raw, screenshot, test
    subject: str
    text: str
    body: Json
    created: float
    attachments: tuple[Attachment, ...] = ()
    key: str = ""  # where an upload goes (S3)
    method: str = "POST"  # HTTP method of a webhook delivery (the reference format PUTs)

    def with_attachment(self, attachment: Attachment) -> Message:
        return Message(self.id, self.kind, self.subject, self.text, self.body, self.created,
                       (*self.attachments, attachment), self.key, self.method)  # fmt: skip

    def encode(self) -> bytes:
        fields: dict[str, Any] = {name: getattr(self, name) for name in self.__slots__}
        fields["attachments"] = [
            {"name": a.name, "content_type": a.content_type, "data": base64.b64encode(a.data).decode()}
            for a in self.attachments
        ]
        return json.dumps(fields, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Message:
        fields = json.loads(payload)
        fields["attachments"] = tuple(
            Attachment(a["name"], a["content_type"], base64.b64decode(a["data"])) for a in fields["attachments"]
        )
        return cls(**fields)


class DeliveryFailed(Exception):  # noqa: N818 - the three kinds below are the names used
    """Why a delivery failed, in words safe to log (no secret, no reply body)."""


class TryLater(DeliveryFailed):
    """The other end is away or busy: keep the message and try again."""


class MessageRefused(DeliveryFailed):
    """The other end refused this message (too large, malformed): it is dropped, and counted."""


class ChannelRefused(DeliveryFailed):
    """The other end refused the channel (credentials, address, bucket): nothing is sent until the
    profile changes; messages wait within the queue's limits."""


class Transport(ABC):
    """Delivers one message to one channel; may be slow (it runs on the channel's sender thread).
    Each kind registers itself under the profile's config type it is made from."""

    kind: ClassVar[str]
    config_type: ClassVar[type]
    registry: ClassVar[dict[type, Callable[..., Transport]]] = {}  # config type -> Transport(config, device_id)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "config_type" in cls.__dict__:
            Transport.registry[cls.config_type] = cls

    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id

    @property
    def name(self) -> str:
        """The channel's name in metrics, logs and the API: kind/id."""
        return f"{self.kind}/{self.channel_id}"

    @abstractmethod
    def send(self, message: Message) -> None:
        """Deliver, or raise TryLater, MessageRefused or ChannelRefused."""
