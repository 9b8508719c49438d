"""Real receivers on loopback for the notification channels: an SMTP server (aiosmtpd) with
STARTTLS and AUTH, an HTTP server for webhooks and Slack, and an S3-compatible server (moto's
standalone server, reached over HTTP by boto3). Each can be stopped and started again on the
same port, for real outages."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from appliance.api.certs import make_certificates
from tests.servers import free_port, wait_for_port


class SmtpServer:
    """STARTTLS required, AUTH required after it; every message kept."""

    def __init__(self, folder: Path, *, user: str = "appliance", password: str = "s3cret-pass") -> None:
        ca, cert, key = make_certificates(folder / "smtp-tls", ["127.0.0.1", "localhost"])
        self.ca_file = ca
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.user, self.password = user, password
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(
            self, hostname="127.0.0.1", port=self.port, tls_context=self.context, require_starttls=True,
            auth_required=True, auth_require_tls=True, authenticator=self._authenticate,
        )  # fmt: skip
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    async def handle_DATA(self, _server: Any, _session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        content = envelope.original_content or b""
        self.messages.append(email.message_from_bytes(content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def _authenticate(
        self, _server: Any, _session: Session, _envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            self.user,
            self.password,
        )
        self.logins.append(f"{mechanism}:{'ok' if ok else 'refused'}")
        return AuthResult(success=ok, handled=False)

    def ids(self) -> list[str]:
        return [str(m["Message-ID"]).strip("<>").split("@")[0] for m in self.messages]


class HttpReceiver:
    """Answers every request with `status` (changeable), keeping method, path, headers and JSON body."""

    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _take(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.status < 300:
                    receiver.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                              "json": json.loads(body)})  # fmt: skip
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_PUT = _take  # noqa: N815 - http.server's names

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests]


class S3Server:
    """moto's standalone S3-compatible server on loopback; its state lives while it runs."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test")  # fmt: skip
