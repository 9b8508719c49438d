"""Slack incoming webhooks (and the Slack-compatible ones of Mattermost and Rocket.Chat): the
message's text as `text`. An incoming webhook cannot carry files, so a snapshot stays on the
device; the text says so."""

from __future__ import annotations

import json

from appliance.config.model import SlackChannelConfig
from appliance.runtime.outputs.channels.base import Message, Transport
from appliance.runtime.outputs.channels.web import request


class SlackTransport(Transport):
    kind = "slack"
    config_type = SlackChannelConfig

    def __init__(self, config: SlackChannelConfig, device_id: str) -> None:
        super().__init__(config.id)
        self.config = config

    def send(self, message: Message) -> None:
        text = f"*{message.subject}*\n{message.text}"
        if message.attachments:
            names = ", ".join(a.name for a in message.attachments)
            text += f"\n_(attachments not sent to Slack: {names})_"
        body = json.dumps({"text": text}).encode()
        request(self.config.url, body, method="POST", headers={"Content-Type": "application/json"},
                timeout_s=self.config.timeout_s, where=f"the Slack webhook of channel {self.config.id}")  # fmt: skip
