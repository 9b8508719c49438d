"""Generic HTTP webhooks: each message as JSON (schemas/events/notification.json), or the raw
data's batch (schemas/events/batch.json) or reference payload as it is; the Authorization header
from the profile's secret; the message id in X-Appliance-Message-Id, for the receiver to drop a
message it has seen (delivery is at least once)."""

from __future__ import annotations

import base64
import json

from appliance.config.model import WebhookChannelConfig
from appliance.runtime.outputs.channels.base import Message, Transport
from appliance.runtime.outputs.channels.web import request
from appliance.runtime.serialize import VERSION, Json

RAW_KIND = "raw"


class WebhookTransport(Transport):
    kind = "webhook"
    config_type = WebhookChannelConfig

    def __init__(self, config: WebhookChannelConfig, device_id: str) -> None:
        super().__init__(config.id)
        self.config = config
        self.device_id = device_id

    def send(self, message: Message) -> None:
        headers = {"Content-Type": "application/json", "X-Appliance-Message-Id": message.id}
        if self.config.authorization:
            headers["Authorization"] = self.config.authorization
        body = message.body if message.kind == RAW_KIND else self.notification(message)
        request(self.config.url, json.dumps(body, separators=(",", ":")).encode(), method=message.method,
                headers=headers, timeout_s=self.config.timeout_s, ca_file=self.config.ca_file,
                where=f"webhook {self.config.id}")  # fmt: skip

    def notification(self, message: Message) -> Json:
        return {
            "type": "notification",
            "v": VERSION,
            "t": message.created,
            "id": message.id,
            "device": self.device_id,
            "kind": message.kind,
            "subject": message.subject,
            "text": message.text,
            "body": message.body,
            "attachments": [
                {"name": a.name, "content_type": a.content_type, "data": base64.b64encode(a.data).decode()}
                for a in message.attachments
            ],
        }
