"""Email over SMTP (smtplib): STARTTLS, TLS or plain, SMTP AUTH when a user name is set; each
message as text with its attachments, its id in the Message-ID header."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from appliance.config.model import EmailChannelConfig
from appliance.runtime.outputs.channels.base import (
    ChannelRefused,
    DeliveryFailed,
    Message,
    MessageRefused,
    Transport,
    TryLater,
)


class EmailTransport(Transport):
    kind = "email"
    config_type = EmailChannelConfig

    def __init__(self, config: EmailChannelConfig, device_id: str) -> None:
        super().__init__(config.id)
        self.config = config
        self.device_id = device_id

    def send(self, message: Message) -> None:
        try:
            with self._connect() as smtp:
                if self.config.username is not None:
                    smtp.login(self.config.username, self.config.password or "")
                smtp.send_message(self._email(message))
        except (smtplib.SMTPException, OSError) as error:
            raise self._failure(error) from None

    def _failure(self, error: smtplib.SMTPException | OSError) -> DeliveryFailed:
        """What an SMTP error means for the channel, said without the server's whole reply."""
        match error:
            case smtplib.SMTPAuthenticationError():
                return ChannelRefused(f"the server refused the login of '{self.config.username}' ({error.smtp_code})")
            case smtplib.SMTPNotSupportedError():
                return ChannelRefused(f"the server does not offer what the profile asks: {_first_line(error)}")
            case smtplib.SMTPRecipientsRefused() | smtplib.SMTPSenderRefused():
                return ChannelRefused(f"the server refused the sender or a recipient ({type(error).__name__})")
            case smtplib.SMTPResponseException() if 400 <= error.smtp_code < 500:
                return TryLater(f"the server answered {error.smtp_code} {_first_line(error.smtp_error)}")
            case smtplib.SMTPResponseException():
                return MessageRefused(f"the server answered {error.smtp_code} {_first_line(error.smtp_error)}")
            case ssl.SSLCertVerificationError():
                return ChannelRefused(f"the server's certificate is not trusted ({error.verify_message})")
        where = f"{self.config.host}:{self.config.port}"
        return TryLater(f"{where}: {type(error).__name__}: {_first_line(error)}")

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        context = ssl.create_default_context(cafile=config.ca_file)
        if config.security == "tls":
            return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_s, context=context)
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        try:
            if config.security == "starttls":
                smtp.starttls(context=context)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _email(self, message: Message) -> EmailMessage:
        email = EmailMessage()
        email["Subject"] = message.subject
        email["From"] = self.config.sender
        email["To"] = ", ".join(self.config.to)
        email["Date"] = formatdate(message.created, localtime=False)
        email["Message-ID"] = f"<{message.id}@{self.device_id}.appliance>"
        email.set_content(message.text)
        for attachment in message.attachments:
            main, _, sub = attachment.content_type.partition("/")
            email.add_attachment(attachment.data, maintype=main, subtype=sub, filename=attachment.name)
        return email


def _first_line(error: object) -> str:
    text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    return text.strip().splitlines()[0][:200] if text.strip() else "no reason given"
