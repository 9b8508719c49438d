"""The config API as one of the runtime's outputs: cheroot serves the app on its own threads,
and the output's thread passes camera snapshots to it.

cheroot (CherryPy's production WSGI server) rather than waitress or gunicorn: waitress serves no
TLS, and gunicorn forks worker processes that would not see the runtime's state; cheroot serves
TLS from the profile's certificate and runs inside the runtime's process."""

from __future__ import annotations

import logging
import threading

from cheroot.ssl.builtin import BuiltinSSLAdapter

from appliance.api.app import create_app
from appliance.api.cheroot_bounds import BoundedServer
from appliance.api.context import ApiContext, Snapshots
from appliance.api.users import UserStore, users_file
from appliance.config import LoadedProfile
from appliance.runtime.commands import Dispatcher
from appliance.runtime.events import Event, Snapshot
from appliance.runtime.outputs.base import Output
from appliance.runtime.state import RuntimeState

log = logging.getLogger(__name__)
THREADS = 16  # requests served at once; a live view holds one (MAX_LIVE_VIEWS of them at most)
LISTEN_BACKLOG = 128  # connections the kernel holds until accepted; cheroot's 5 made a burst of 32 clients see resets
MAX_HEADER_BYTES = 16 * 1024  # a request line and headers; a token is under 1 KiB
STOP_TIMEOUT_S = 5.0


class ApiServer(Output):
    name = "api"

    def __init__(
        self,
        loaded: LoadedProfile,
        state: RuntimeState,
        dispatcher: Dispatcher,
    ) -> None:
        self.loaded = loaded
        self.state = state
        self.dispatcher = dispatcher
        self.snapshots = Snapshots(dispatcher)
        self.server: BoundedServer | None = None
        self.context: ApiContext | None = None
        self._thread: threading.Thread | None = None
        self.active = False

    def start(self) -> None:
        if self.loaded.profile.api.enabled:
            self._serve()

    def handle(self, event: Event) -> None:
        if isinstance(event, Snapshot):
            self.snapshots.offer(event)

    def reconfigure(self, loaded: LoadedProfile) -> None:
        before, self.loaded = self.loaded.profile, loaded
        profile = loaded.profile
        if (profile.api, profile.storage.data_dir) != (before.api, before.storage.data_dir):
            self.close()
            if profile.api.enabled:
                self._serve()

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            if self._thread is not None:
                self._thread.join(STOP_TIMEOUT_S)
            self.server = self._thread = self.context = None
        self.active = False

    def _serve(self) -> None:
        profile = self.loaded.profile
        config = profile.api
        users = UserStore(users_file(profile.storage.data_dir, config.auth.users_file))
        self.context = ApiContext(self.state, self.dispatcher, self.snapshots, config.auth.enabled)
        app = create_app(self.context, users)
        host, _, port = config.listen.rpartition(":")
        self.server = BoundedServer((host.strip("[]"), int(port)), app, numthreads=THREADS, server_name="appliance",
                                    request_queue_size=LISTEN_BACKLOG)  # fmt: skip
        self.server.max_request_header_size = MAX_HEADER_BYTES  # refused before anything is parsed
        if config.tls.cert_file and config.tls.key_file:
            self.server.ssl_adapter = BuiltinSSLAdapter(config.tls.cert_file, config.tls.key_file)
        self.server.prepare()  # binds now: a port in use fails here, loudly
        self._thread = threading.Thread(target=self.server.serve, name="api-server", daemon=True)
        self._thread.start()
        self.active = True
        scheme = "https" if self.server.ssl_adapter else "http"
        log.info("api: serving on %s://%s/api/v1 (docs: /api/v1/swagger)%s", scheme, config.listen,
                 "" if config.auth.enabled else "; auth is off (loopback only)")  # fmt: skip
        if config.auth.enabled and not users.users():
            log.warning("api: no users yet; create one on this device: appliance users add NAME --role admin")
