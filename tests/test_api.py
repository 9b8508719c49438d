"""The config API over real HTTP, served by a real runtime: auth, roles, every route, ETags,
changes through the profile-change path, snapshots and the live view."""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import jwt
import numpy as np
import pytest
import requests

from appliance.geometry import fit_homography
from evaluation import load_mot_ground_truth
from tests.conftest import PETS_TRUTH, PETS_VIDEO, PROFILES
from tests.runtime import RunningAppliance
from tests.servers import wait_until

PROFILE = """
extends: @X86@
device: {id: test-api}
detector: {threads: 1}
cameras:
  - id: cam-a   # the first camera
    source: @VIDEO@
    live_view: true
  - id: cam-b   # the second camera
    source: @VIDEO@
areas:
  - {id: hall, cameras: [cam-a, cam-b], occupancy_threshold: 50}
storage: {data_dir: @DATA_DIR@}
metrics: {listen: "127.0.0.1:@METRICS_PORT@"}
mqtt: {enabled: false}
api: {listen: "127.0.0.1:@API_PORT@"}
"""
MEMORY_LIMIT_BYTES = 3 << 30  # address space of each process of the runtime
PASSWORDS = {"admin": "admin-password-1", "viewer": "viewer-password-1"}


def users(profile: Path, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "appliance", "users", "--profile", str(profile), *args]
    return subprocess.run(command, input=password, capture_output=True, text=True, timeout=60)


class Api:
    def __init__(self, appliance: RunningAppliance) -> None:
        self.appliance = appliance
        self.base = f"http://127.0.0.1:{appliance.api_port}/api/v1"
        self._tokens: dict[str, str] = {}

    def token(self, name: str, password: str | None = None) -> str:
        if password is None and name in self._tokens:
            return self._tokens[name]
        response = requests.post(f"{self.base}/auth/login", json={"username": name,
                                 "password": password or PASSWORDS[name]}, timeout=10)  # fmt: skip
        assert response.status_code == 200, response.text
        token = str(response.json()["access_token"])
        if password is None:
            self._tokens[name] = token
        return token

    def call(self, method: str, path: str, token: str | None = None, **kwargs: object) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, f"{self.base}{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def etag(self, token: str) -> str:
        return self.call("GET", "/profile", token).headers["ETag"]


@pytest.fixture(scope="module")
def api(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp("api")
    profile = PROFILE.replace("@X86@", str(PROFILES / "x86.yaml")).replace("@VIDEO@", str(data / PETS_VIDEO))
    # under a memory limit: hostile requests must not take the runtime (or a worker) past it
    appliance = RunningAppliance(folder, profile, wrapper=("prlimit", f"--as={MEMORY_LIMIT_BYTES}"))
    try:
        for name in PASSWORDS:
            created = users(appliance.profile_path, "add", name, "--role", name, "--password-stdin",
                            password=PASSWORDS[name] + "\n")  # fmt: skip
            assert created.returncode == 0, created.stderr
        client = Api(appliance)
        assert wait_until(lambda: _ready(client), 90), appliance.log
        yield client
    finally:
        appliance.kill()


def _ready(api: Api) -> bool:
    try:
        return requests.get(f"{api.base}/health/ready", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_health_needs_no_login_and_says_which_cameras_report(api: Api) -> None:
    assert api.call("GET", "/health/live").json() == {"status": "ok"}
    ready = api.call("GET", "/health/ready").json()
    assert ready == {"status": "ready", "cameras": {"cam-a": "online", "cam-b": "online"}}


def test_reads_for_a_viewer(api: Api) -> None:
    token = api.token("viewer")
    version = api.call("GET", "/version", token).json()
    assert version["device"] == "test-api" and version["model_sha256"]
    profile = api.call("GET", "/profile", token)
    assert profile.json()["device"]["id"] == "test-api" and profile.headers["ETag"].startswith('"')
    yaml = api.call("GET", "/profile/yaml", token)
    assert "# the first camera" in yaml.text and yaml.headers["Content-Type"].startswith("application/yaml")
    assert api.call("GET", "/profile/sections/tracker", token).json()["algorithm"] == "bytetrack"
    assert [c["id"] for c in api.call("GET", "/cameras", token).json()["items"]] == ["cam-a", "cam-b"]
    assert api.call("GET", "/cameras/cam-b", token).json()["id"] == "cam-b"
    assert api.call("GET", "/areas/hall", token).json()["cameras"] == ["cam-a", "cam-b"]
    counts = api.call("GET", "/counts", token).json()
    assert set(counts["cameras"]) == {"cam-a", "cam-b"} and "hall" in counts["areas"]
    missing = api.call("GET", "/cameras/nowhere", token)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_secrets_are_masked_in_every_read(api: Api) -> None:
    token = api.token("viewer")
    secret = (api.appliance.data_dir / "api" / "jwt-secret").read_text().strip()
    for path in ("/profile", "/profile/yaml", "/profile/sections/detector"):
        assert secret not in api.call("GET", path, token).text


def test_a_masked_secret_written_back_means_unchanged(api: Api) -> None:
    """Read a camera, change one field, write the whole camera back: its URL's password, shown
    masked, stays the real one in the file. A mask with no stored value behind it is refused."""
    token = api.token("admin")
    url = "rtsp://admin:s3cret-pw@127.0.0.1:9/stream"
    created = api.call("POST", "/cameras", token, headers={"If-Match": api.etag(token)},
                       json={"id": "cam-x", "source": url, "enabled": False})  # fmt: skip
    assert created.status_code == 200, created.text
    shown = api.call("GET", "/cameras/cam-x", token).json()
    assert "s3cret-pw" not in json.dumps(shown) and "********" in shown["source"]
    written = api.call("PATCH", "/cameras/cam-x", token, headers={"If-Match": api.etag(token)},
                       json={**shown, "fps_cap": 3})  # fmt: skip
    assert written.status_code == 200, written.text
    text = api.appliance.profile_path.read_text()
    assert url in text and "********" not in text and api.call("GET", "/cameras/cam-x", token).json()["fps_cap"] == 3
    for method, path, body in (("PATCH", "/profile", {"mqtt": {"password": "********"}}),
                               ("POST", "/cameras", {"id": "cam-y", "source": "rtsp://a:********@h/s"})):  # fmt: skip
        refused = api.call(method, path, token, headers={"If-Match": api.etag(token)}, json=body)
        assert refused.status_code == 422 and "masked secret" in refused.text, refused.text
    assert "********" not in api.appliance.profile_path.read_text()
    deleted = api.call("DELETE", "/cameras/cam-x", token, headers={"If-Match": api.etag(token)})
    assert deleted.status_code == 200, deleted.text


def test_an_oversized_header_is_refused_before_it_is_read(api: Api) -> None:
    """A 4 MiB Authorization header (once 128 MiB took 6.6 s and 500 MB before a 401)."""
    started = time.monotonic()
    refused = requests.get(f"{api.base}/version", headers={"Authorization": "Bearer " + "a" * (4 << 20)}, timeout=60)
    assert refused.status_code in (413, 431) and time.monotonic() - started < 30, refused.status_code
    assert requests.get(f"{api.base}/health/live", timeout=10).status_code == 200


def _slow_request(port: int, source: str) -> socket.socket:
    """A connection from `source` (any 127.x address reaches the loopback) that has sent part of
    a request's headers."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    connection.sendall(b"GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\n")
    return connection


def _open(connection: socket.socket) -> bool:
    """Whether the server still waits for the rest of the request (it has neither answered nor closed)."""
    connection.setblocking(False)
    try:
        connection.recv(1, socket.MSG_PEEK)  # an answer, or b"" when closed
    except BlockingIOError:
        return True
    except OSError:
        pass
    return False


def _health_answers(api: Api) -> bool:
    """Answered in 20 s (a loaded machine's slack over the few seconds it takes)."""
    return requests.get(f"{api.base}/health/live", timeout=20).status_code == 200


@pytest.mark.parametrize("clients", [1, 10])
def test_slow_clients_are_cut_off_and_health_keeps_answering(api: Api, clients: int) -> None:
    """Slowloris: 30 connections dripping a header line every 2 s (cheroot's own timeout is per
    read, so once 12 held all 8 threads for ever). One address keeps at most 4 slow requests, all
    addresses together 8 (half the threads); every request must arrive whole in 10 s."""
    sources = [f"127.0.0.{10 + index % clients}" for index in range(30)]
    slow = [_slow_request(api.appliance.api_port, source) for source in sources]
    stop = threading.Event()

    def drip() -> None:
        while not stop.wait(2):
            for connection in slow:
                with contextlib.suppress(OSError):
                    connection.send(b"X-Slow: 1\r\n")

    dripping = threading.Thread(target=drip, daemon=True)
    dripping.start()
    try:
        assert wait_until(lambda: sum(map(_open, slow)) <= (4 if clients == 1 else 8), 9), sum(map(_open, slow))
        assert _health_answers(api)
        assert wait_until(lambda: not any(map(_open, slow)), 40), sum(map(_open, slow))
        assert _health_answers(api)
    finally:
        stop.set()
        dripping.join()
        for connection in slow:
            connection.close()
    dropped_from = re.findall(r"the latest from (\S+):", api.appliance.log)
    assert dropped_from and "127.0.0.1" not in dropped_from


def test_live_views_are_capped_and_health_keeps_answering(api: Api) -> None:
    """20 live views (each holds a server thread): 4 open, the rest 503 with Retry-After; a slot is
    free again once its viewer leaves."""
    token = api.token("viewer")
    url = f"{api.base}/cameras/cam-a/live.mjpg"
    views = [requests.get(url, headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=30)
             for _ in range(20)]  # fmt: skip
    try:
        statuses = sorted(view.status_code for view in views)
        assert statuses == [200] * 4 + [503] * 16, statuses
        refused = next(view for view in views if view.status_code == 503)
        assert refused.json()["error"]["code"] == "too_many_live_views" and refused.headers["Retry-After"] == "10"
        assert _health_answers(api)
        assert api.call("GET", "/cameras/cam-a/snapshot.jpg", token).status_code == 200
    finally:
        for view in views:
            view.close()

    def reopened() -> bool:
        with requests.get(url, headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=30) as view:
            return view.status_code == 200

    assert wait_until(reopened, 30, interval=0.5)


def test_a_chunked_body_over_the_limit_is_413_and_a_small_one_is_read(api: Api) -> None:
    """The 1 MiB limit holds for a body sent chunked, without a Content-Length (once a 3 MB one got 422)."""
    token = api.token("admin")

    def chunks(body: bytes) -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    headers = {"Content-Type": "application/json", "If-Match": api.etag(token)}
    large = api.call("PATCH", "/profile", token, headers=headers, data=chunks(b" " * (3 << 20) + b"{}"))
    assert large.status_code == 413 and large.json()["error"]["code"] == "too_large", large.text
    small = api.call("PATCH", "/profile/sections/tracker", token, headers={**headers, "If-Match": api.etag(token)},
                     data=chunks(json.dumps({"max_lost_s": 1.5}).encode()))  # fmt: skip
    assert small.status_code == 200, small.text
    assert api.call("GET", "/profile/sections/tracker", token).json()["max_lost_s"] == 1.5


ROUTES = [  # method, path, role needed
    ("GET", "/version", "viewer"),
    ("GET", "/counts", "viewer"),
    ("GET", "/profile", "viewer"),
    ("GET", "/profile/yaml", "viewer"),
    ("PUT", "/profile", "admin"),
    ("PATCH", "/profile", "admin"),
    ("GET", "/profile/sections/tracker", "viewer"),
    ("PATCH", "/profile/sections/tracker", "admin"),
    ("GET", "/cameras", "viewer"),
    ("POST", "/cameras", "admin"),
    ("GET", "/cameras/cam-a", "viewer"),
    ("PATCH", "/cameras/cam-a", "admin"),
    ("DELETE", "/cameras/cam-a", "admin"),
    ("POST", "/cameras/cam-a/enable", "admin"),
    ("POST", "/cameras/cam-a/disable", "admin"),
    ("GET", "/cameras/cam-a/snapshot.jpg", "viewer"),
    ("GET", "/cameras/cam-a/calibration", "viewer"),
    ("PUT", "/cameras/cam-a/calibration", "admin"),
    ("PUT", "/cameras/cam-a/roi", "admin"),
    ("GET", "/episodes", "viewer"),
    ("GET", "/areas", "viewer"),
    ("POST", "/areas", "admin"),
    ("GET", "/areas/hall", "viewer"),
    ("PATCH", "/areas/hall", "admin"),
    ("DELETE", "/areas/hall", "admin"),
    ("GET", "/ota/status", "viewer"),
    ("GET", "/ota/history", "viewer"),
    ("GET", "/cameras/cam-a/zones", "viewer"),
    ("POST", "/cameras/cam-a/zones", "admin"),
    ("GET", "/cameras/cam-a/lines", "viewer"),
    ("PATCH", "/cameras/cam-a/lines/door", "admin"),
    ("DELETE", "/cameras/cam-a/zones/queue", "admin"),
    ("GET", "/reports?camera=cam-a&from=2020-01-01&to=2020-01-02", "viewer"),
    ("GET", "/reports/chart.png?area=hall&day=2020-01-01", "viewer"),
    ("GET", "/reports/heatmap.png?camera=cam-a&from=2020-01-01&to=2020-01-02&snapshot=false", "viewer"),
]


@pytest.mark.parametrize(("method", "path", "role"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_the_auth_matrix(api: Api, method: str, path: str, role: str) -> None:
    secret = (api.appliance.data_dir / "api" / "jwt-secret").read_text().strip()
    now = int(time.time())
    claims = {"sub": "admin", "role": "admin", "tv": 1, "type": "access", "jti": "x", "fresh": False}
    wrong_key = "a-key-that-is-not-this-devices-secret-at-all"
    forged = jwt.encode({**claims, "iat": now, "nbf": now, "exp": now + 600}, wrong_key, algorithm="HS256")
    expired = jwt.encode({**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}, secret, algorithm="HS256")
    for token, why in ((None, "Missing Authorization"), (forged, "invalid token"), (expired, "expired")):
        refused = api.call(method, path, token, headers={"If-Match": '"x"'})
        assert refused.status_code == 401, (token, refused.text)
        assert why.lower() in refused.json()["error"]["message"].lower()
    viewer = api.call(method, path, api.token("viewer"), headers={"If-Match": '"x"'}, json={})
    assert viewer.status_code == (403 if role == "admin" else 200), viewer.text
    if role == "admin":  # an admin gets past auth: a stale If-Match, or nothing there to change, stops this one
        admin = api.call(method, path, api.token("admin"), headers={"If-Match": '"stale"'}, json={"id": "hall"})
        assert admin.status_code in (404, 409, 412, 422), admin.text


def test_a_new_password_revokes_every_token_of_that_user(api: Api) -> None:
    profile = api.appliance.profile_path
    assert (
        users(profile, "add", "temp", "--role", "viewer", "--password-stdin", password="first-password\n").returncode
        == 0
    )
    token = api.token("temp", "first-password")
    assert api.call("GET", "/version", token).status_code == 200
    assert users(profile, "passwd", "temp", "--password-stdin", password="second-password\n").returncode == 0
    revoked = api.call("GET", "/version", token)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    token = api.token("temp", "second-password")
    assert users(profile, "remove", "temp").returncode == 0
    assert api.call("GET", "/version", token).status_code == 401
    assert "temp" not in users(profile, "list").stdout
    # the name taken again: the removed user's tokens stay dead
    assert (
        users(profile, "add", "temp", "--role", "admin", "--password-stdin", password="third-password\n").returncode
        == 0
    )
    assert api.call("GET", "/version", token).status_code == 401
    assert api.call("GET", "/version", api.token("temp", "third-password")).status_code == 200
    assert users(profile, "remove", "temp").returncode == 0


def test_refresh_tokens_give_new_access_tokens(api: Api) -> None:
    tokens = requests.post(f"{api.base}/auth/login", json={"username": "viewer", "password": PASSWORDS["viewer"]},
                           timeout=10).json()  # fmt: skip
    refreshed = api.call("POST", "/auth/refresh", tokens["refresh_token"])
    assert refreshed.status_code == 200 and api.call("GET", "/version", refreshed.json()["access_token"]).ok
    assert api.call("POST", "/auth/refresh", tokens["access_token"]).status_code == 401  # not a refresh token
    assert api.call("GET", "/version", tokens["refresh_token"]).status_code == 401  # not an access token


def _login_from(api: Api, source: str, name: str, password: str) -> int:
    """The status of a login sent from `source` (a 127.x address), so that the limits it meets
    are not those of the other tests' address."""
    connection = http.client.HTTPConnection("127.0.0.1", api.appliance.api_port, timeout=60,
                                            source_address=(source, 0))  # fmt: skip
    try:
        body = json.dumps({"username": name, "password": password})
        connection.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_logins_are_rate_limited(api: Api) -> None:
    statuses = [_login_from(api, "127.0.0.40", "nobody", "wrong") for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[-1] == 429
    assert _login_from(api, "127.0.0.41", "admin", PASSWORDS["admin"]) == 200  # another address


def test_parallel_wrong_logins_get_no_more_password_checks_than_the_limit(api: Api) -> None:
    """100 wrong logins at once, from one address and for one name: 10 are checked (401), the
    rest refused before (429); once 17 were checked. Right passwords never count."""
    for _ in range(3):
        assert _login_from(api, "127.0.0.42", "viewer", PASSWORDS["viewer"]) == 200
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(lambda _: _login_from(api, "127.0.0.42", "viewer", "wrong-guess"), range(100)))
    assert sorted(statuses) == [401] * 10 + [429] * 90, statuses
    assert _login_from(api, "127.0.0.43", "viewer", PASSWORDS["viewer"]) == 429  # the name is limited too


def test_users_cli_refuses_bad_input_with_status_2(api: Api) -> None:
    profile = api.appliance.profile_path
    duplicate = users(profile, "add", "admin", "--role", "admin", "--password-stdin", password="long-enough-1\n")
    assert duplicate.returncode == 2 and "exists already" in duplicate.stderr
    short = users(profile, "add", "shorty", "--role", "viewer", "--password-stdin", password="short\n")
    assert short.returncode == 2 and "8 to 1024 characters" in short.stderr
    assert users(profile, "add", "Bad Name", "--role", "viewer", "--password-stdin", password="x" * 10).returncode == 2
    assert (api.appliance.data_dir / "api" / "users.json").stat().st_mode & 0o777 == 0o600


def test_writes_need_if_match_and_a_stale_one_is_refused(api: Api) -> None:
    token = api.token("admin")
    missing = api.call("PATCH", "/profile/sections/distancing", token, json={"threshold_cm": 160})
    assert missing.status_code == 422 and "If-Match" in missing.text
    etag = api.etag(token)

    def write(threshold: int) -> requests.Response:
        return api.call("PATCH", "/profile/sections/distancing", token, headers={"If-Match": etag},
                        json={"threshold_cm": threshold})  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(write, (170, 180)))
    assert sorted(r.status_code for r in results) == [200, 412], [r.text for r in results]
    winner = 170 if results[0].status_code == 200 else 180
    assert api.call("GET", "/profile/sections/distancing", token).json()["threshold_cm"] == winner
    assert "# the first camera" in api.appliance.profile_path.read_text()
    rejected = [line for line in api.appliance.log.splitlines() if "profile change rejected" in line]
    assert rejected and not any(" ERROR " in line for line in rejected)  # the client's mistake, not the device's


@pytest.mark.parametrize("depth", [40, 900, 5000])
def test_a_body_nested_too_deep_is_refused_and_the_change_path_lives_on(api: Api, depth: int) -> None:
    token = api.token("admin")
    body = '{"device": {"name": ' + '{"x": ' * depth + "1" + "}" * depth + "}}"
    refused = api.call("PATCH", "/profile", token, headers={"If-Match": api.etag(token),
                       "Content-Type": "application/json"}, data=body)  # fmt: skip
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "too_deep", refused.text
    changed = api.call("PATCH", "/profile/sections/distancing", token, headers={"If-Match": api.etag(token)},
                       json={"threshold_cm": 140 + depth % 7})  # fmt: skip
    assert changed.status_code == 200, changed.text


def test_an_invalid_change_leaves_the_file_byte_identical(api: Api) -> None:
    token = api.token("admin")
    before = api.appliance.profile_path.read_bytes()
    refused = api.call("PATCH", "/cameras/cam-b", token, headers={"If-Match": api.etag(token)},
                       json={"fps_cap": -1, "sauce": "x"})  # fmt: skip
    assert refused.status_code == 422
    details = refused.json()["error"]["details"]
    assert any("fps_cap: -1 is less than or equal to the minimum of 0" in d for d in details)
    assert any("unknown key 'sauce'" in d for d in details)
    assert api.appliance.profile_path.read_bytes() == before
    masked = api.call("PUT", "/profile", token, headers={"If-Match": api.etag(token)}, data="api: {auth: ********}")
    assert masked.status_code == 422 and api.appliance.profile_path.read_bytes() == before
    signing_key = api.call("PATCH", "/profile", token, headers={"If-Match": api.etag(token)},
                           json={"api": {"auth": {"jwt_secret": "key-in-the-profile-4711"}}})  # fmt: skip
    assert signing_key.status_code == 422 and "jwt_secret_file" in signing_key.text, signing_key.text
    assert "key-in-the-profile" not in signing_key.text and api.appliance.profile_path.read_bytes() == before


def test_a_camera_change_restarts_only_that_camera(api: Api) -> None:
    token = api.token("admin")
    pids = api.appliance.worker_pids()
    changed = api.call("PATCH", "/cameras/cam-b", token, headers={"If-Match": api.etag(token)}, json={"fps_cap": 8})
    assert changed.status_code == 200, changed.text
    assert changed.json()["restarted"] == ["cam-b"] and changed.headers["ETag"] == api.etag(token)
    assert wait_until(lambda: api.appliance.worker_pids()["cam-b"] != pids["cam-b"], 30)
    assert api.appliance.worker_pids()["cam-a"] == pids["cam-a"]
    assert "fps_cap: 8" in api.appliance.profile_path.read_text()


def test_an_event_log_setting_restarts_no_camera(api: Api) -> None:
    """Retention and size are the event log's alone: the workers keep running."""
    token = api.token("admin")
    pids = api.appliance.worker_pids()
    changed = api.call("PATCH", "/profile", token, headers={"If-Match": api.etag(token)},
                       json={"storage": {"event_log": {"retention_days": 9, "max_disk_mb": 300}}})  # fmt: skip
    assert changed.status_code == 200 and changed.json()["restarted"] == [], changed.text
    assert api.appliance.worker_pids() == pids


def test_cameras_are_created_disabled_enabled_and_deleted(api: Api, data: Path) -> None:
    token = api.token("admin")
    created = api.call("POST", "/cameras", token, headers={"If-Match": api.etag(token)},
                       json={"id": "cam-c", "source": str(data / PETS_VIDEO)})  # fmt: skip
    assert created.status_code == 200 and created.json()["added"] == ["cam-c"], created.text
    twice = api.call("POST", "/cameras", token, headers={"If-Match": api.etag(token)}, json={"id": "cam-c"})
    assert twice.status_code == 409
    disabled = api.call("POST", "/cameras/cam-c/disable", token, headers={"If-Match": api.etag(token)})
    assert disabled.json()["removed"] == ["cam-c"]
    enabled = api.call("POST", "/cameras/cam-c/enable", token, headers={"If-Match": api.etag(token)})
    assert enabled.json()["added"] == ["cam-c"]
    deleted = api.call("DELETE", "/cameras/cam-c", token, headers={"If-Match": api.etag(token)})
    assert deleted.status_code == 200 and deleted.json()["removed"] == ["cam-c"]
    assert "cam-c" not in api.appliance.profile_path.read_text()
    assert "# the second camera" in api.appliance.profile_path.read_text()


def test_zones_and_lines_are_created_changed_and_deleted_in_place(api: Api) -> None:
    token = api.token("admin")

    def write(method: str, path: str, body: dict[str, object] | None = None) -> requests.Response:
        return api.call(method, f"/cameras/cam-a/{path}", token, headers={"If-Match": api.etag(token)}, json=body)

    zone = {"id": "queue", "polygon": [[0, 0], [300, 0], [300, 500], [0, 500]], "loitering_s": 30}
    created = write("POST", "zones", zone)
    assert created.status_code == 200 and created.json()["restarted"] == [], created.text
    assert write("POST", "zones", zone).status_code == 409  # exists
    assert write("POST", "lines", {"id": "door", "points": [[0, 300], [700, 300]]}).status_code == 200
    assert write("PATCH", "lines/door", {"in_side": "right"}).status_code == 200
    assert api.call("GET", "/cameras/cam-a/lines/door", token).json()["in_side"] == "right"
    crossed = write("PATCH", "zones/queue", {"polygon": [[0, 0], [100, 100], [100, 0], [0, 100]]})
    assert crossed.status_code == 422, crossed.text
    assert any("self-intersection" in d and "zones[0].polygon" in d for d in crossed.json()["error"]["details"])
    area = api.call("POST", "/areas", token, headers={"If-Match": api.etag(token)},
                    json={"id": "queue-area", "zones": ["cam-a/queue"], "entrances": ["cam-a/door"]})  # fmt: skip
    assert area.status_code == 200, area.text
    assert set(api.call("GET", "/counts", token).json()) == {"cameras", "areas", "zones", "lines", "masks"}
    assert write("DELETE", "zones/nowhere").status_code == 404
    in_use = write("DELETE", "zones/queue")  # the area names it
    assert in_use.status_code == 422 and any("has no zone 'queue'" in d for d in in_use.json()["error"]["details"])
    assert api.call("DELETE", "/areas/queue-area", token, headers={"If-Match": api.etag(token)}).status_code == 200
    assert write("DELETE", "zones/queue").status_code == 200 and write("DELETE", "lines/door").status_code == 200
    assert api.call("GET", "/cameras/cam-a/zones", token).json() == {"items": []}


def test_areas_are_created_changed_and_deleted(api: Api) -> None:
    token = api.token("admin")
    created = api.call("POST", "/areas", token, headers={"If-Match": api.etag(token)},
                       json={"id": "lobby-only", "cameras": ["cam-a"], "occupancy_threshold": 5})  # fmt: skip
    assert created.status_code == 200 and created.json()["restarted"] == [], created.text
    changed = api.call("PATCH", "/areas/lobby-only", token, headers={"If-Match": api.etag(token)},
                       json={"occupancy_threshold": 7})  # fmt: skip
    assert changed.status_code == 200 and api.call("GET", "/areas/lobby-only", token).json()["occupancy_threshold"] == 7
    read = api.call("GET", "/areas/lobby-only", token)
    assert read.headers["ETag"] == api.etag(token)  # an item's reader can write it back with If-Match
    unknown = api.call("PATCH", "/areas/lobby-only", token, headers={"If-Match": api.etag(token)},
                       json={"cameras": ["cam-z"]})  # fmt: skip
    assert unknown.status_code == 422 and any("unknown camera 'cam-z'" in d for d in unknown.json()["error"]["details"])
    deleted = api.call("DELETE", "/areas/lobby-only", token, headers={"If-Match": api.etag(token)})
    assert deleted.status_code == 200 and "lobby-only" not in api.appliance.profile_path.read_text()


def test_a_snapshot_and_the_live_view_read_frame_by_frame_with_opencv(api: Api) -> None:
    token = api.token("viewer")
    snapshot = api.call("GET", "/cameras/cam-a/snapshot.jpg", token)
    image = cv2.imdecode(np.frombuffer(snapshot.content, np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.headers["Content-Type"] == "image/jpeg" and image.shape == (576, 768, 3)
    capture = cv2.VideoCapture(f"{api.base}/cameras/cam-a/live.mjpg?access_token={token}", cv2.CAP_FFMPEG)
    try:
        frames = [capture.read() for _ in range(5)]
    finally:
        capture.release()
    assert all(ok and frame.shape == (576, 768, 3) for ok, frame in frames)
    off = api.call("GET", "/cameras/cam-b/live.mjpg", token)
    assert off.status_code == 409 and "live_view" in off.json()["error"]["message"]
    assert api.call("GET", "/version?access_token=" + token).status_code == 401  # the query string is for media only


def ground_truth_points(data: Path, count: int = 60) -> list[dict[str, list[float]]]:
    """Real PETS09-S2L1 foot points (bottom centres of boxes) with their floor positions (cm) from
    the MOT ground truth, spread over the first half of the sequence."""
    truth = load_mot_ground_truth(data / PETS_TRUTH)
    pairs = {}
    for number in sorted(truth)[: len(truth) // 2]:
        for box in truth[number]:
            if box.counts:
                pairs[(box.floor[0] * 100, box.floor[1] * 100)] = ((box.box[0] + box.box[2]) / 2, box.box[3])
    chosen = list(pairs.items())[:: max(1, len(pairs) // count)][:count]
    return [{"image": [round(x, 2), round(y, 2)], "floor": [round(u, 2), round(v, 2)]} for (u, v), (x, y) in chosen]


def test_calibration_from_real_ground_truth_points(api: Api, data: Path) -> None:
    token = api.token("admin")
    points = ground_truth_points(data)
    calibrated = api.call("PUT", "/cameras/cam-b/calibration", token, headers={"If-Match": api.etag(token)},
                          json={"points": points})  # fmt: skip
    assert calibrated.status_code == 200, calibrated.text
    result = calibrated.json()
    expected = fit_homography([p["image"] for p in points], [p["floor"] for p in points]).reprojection_error_cm
    assert result["reprojection_error_cm"] == pytest.approx(expected, abs=0.01)
    assert 1 < result["reprojection_error_cm"] < 6  # bench/analysis.py: 3.0 cm over every point of that half
    assert api.call("GET", "/cameras/cam-b/calibration", token).json() == result
    assert "method: calibrated" in api.appliance.profile_path.read_text()
    on_a_line = [{"image": [100 * i, 100 * i], "floor": [i, i]} for i in range(1, 6)]
    refused = api.call("PUT", "/cameras/cam-b/calibration", token, headers={"If-Match": api.etag(token)},
                       json={"points": on_a_line})  # fmt: skip
    assert refused.status_code == 422
    assert any("on one line" in detail or "line" in detail for detail in refused.json()["error"]["details"])
    roi = api.call("PUT", "/cameras/cam-b/roi", token, headers={"If-Match": api.etag(token)},
                   json={"roi": [[0, 100], [700, 100], [700, 570], [0, 570]]})  # fmt: skip
    assert roi.status_code == 200 and api.call("GET", "/cameras/cam-b", token).json()["roi"][1] == [700, 100]


def test_recent_episodes_are_paged_and_the_event_log_exported(api: Api) -> None:
    token = api.token("viewer")
    assert wait_until(lambda: len(api.call("GET", "/episodes?per_page=3", token).json()["items"]) == 3, 120)
    first, second = (api.call("GET", f"/episodes?per_page=3&page={n}", token).json() for n in (1, 2))
    assert first["more"] and first["items"] != second["items"]
    assert all(episode["state"] == "ended" for episode in first["items"])
    assert api.call("GET", "/episodes?camera=cam-a&per_page=500", token).json()["items"] is not None
    today = time.strftime("%Y-%m-%d", time.gmtime())
    export = api.call("GET", f"/events/export?from={today}&to={today}", token)
    assert export.status_code == 200 and export.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(export.content)) as bundle:
        names = bundle.namelist()
        assert f"cam-a/{today}.jsonl" in names
        assert any(json.loads(line)["type"] == "episode" for line in bundle.read(f"cam-b/{today}.jsonl").splitlines())
    too_long = api.call("GET", "/events/export?from=2026-01-01&to=2026-03-01", token)
    assert too_long.status_code == 422
    chosen = api.call("GET", f"/events/export?from={today}&to={today}&camera=cam-b&type=episode&type=run&reports=true",
                      token)  # fmt: skip
    assert chosen.status_code == 200, chosen.text
    with zipfile.ZipFile(io.BytesIO(chosen.content)) as bundle:
        names = bundle.namelist()
        assert f"cam-b/{today}.jsonl" in names and f"cam-a/{today}.jsonl" not in names, names
        types = {json.loads(line)["type"] for line in bundle.read(f"cam-b/{today}.jsonl").splitlines()}
        assert types <= {"episode", "run"} and "episode" in types, types
        assert "reports/camera-cam-b-day.csv" in names and "reports/camera-cam-a-day.csv" not in names, names
        assert "reports/area-hall-hour.csv" in names
        day = bundle.read("reports/camera-cam-b-day.csv").decode().splitlines()
        assert day[0].startswith("start,end,people_mean") and len(day) == 2


def test_reports_charts_and_heatmaps_from_the_live_history(api: Api) -> None:
    token = api.token("viewer")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    query = f"camera=cam-a&from={today}&to={tomorrow}"

    def people_seen() -> bool:
        reply = api.call("GET", f"/reports?{query}&every=day", token)
        return reply.status_code == 200 and (reply.json()["rows"][0]["people_max"] or 0) > 0

    assert wait_until(people_seen, 60)
    hours = api.call("GET", f"/reports?{query}&every=hour&per_page=5", token).json()
    assert hours["more"] and len(hours["rows"]) == 5 and hours["timezone"] == "UTC" and "episodes" in hours["columns"]
    csv = api.call("GET", f"/reports?area=hall&from={today}&to={tomorrow}&every=day&format=csv", token)
    assert csv.headers["Content-Type"].startswith("text/csv") and csv.text.startswith("start,end,people_mean")
    for path in (f"/reports/chart.png?camera=cam-a&day={today}", f"/reports/heatmap.png?{query}"):
        picture = api.call("GET", path, token)
        assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG"), picture.text
        assert cv2.imdecode(np.frombuffer(picture.content, np.uint8), cv2.IMREAD_COLOR) is not None
    refused = {
        "/reports?camera=cam-a&from=2026-01-01&to=2026-12-31": (422, "max_query_days"),
        f"/reports?camera=cam-a&area=hall&from={today}&to={tomorrow}": (422, "exactly one"),
        f"/reports?zone=cam-a/nowhere&from={today}&to={tomorrow}": (404, "no zone"),
        f"/reports?camera=cam-a&from=0001-01-01&to={tomorrow}": (422, "between"),
        f"/reports/heatmap.png?{query}&floor=true": (422, "no calibration"),  # only cam-b is calibrated, by a test
    }
    for path, (status, reason) in refused.items():
        reply = api.call("GET", path, token)
        assert reply.status_code == status and reason in reply.text, (path, reply.text)


def test_errors_have_one_shape_and_no_stack_trace(api: Api) -> None:
    token = api.token("admin")
    for response in (
        api.call("GET", "/no/such/route", token),
        api.call(
            "PATCH",
            "/profile",
            token,
            headers={"If-Match": api.etag(token), "Content-Type": "application/json"},
            data="{not json",
        ),
        api.call("PATCH", "/profile", token, headers={"If-Match": api.etag(token)}, data=b"x" * (2 << 20)),
        api.call("GET", "/profile/sections/nothing", token),
    ):
        error = response.json()["error"]
        assert set(error) == {"status", "code", "message", "details"} and error["status"] == response.status_code
        assert "Traceback" not in response.text
    assert api.call("PATCH", "/profile", token, data=b"x" * (2 << 20)).status_code == 413


def test_security_headers_and_no_cors_unless_configured(api: Api) -> None:
    response = api.call("GET", "/health/live", headers={"Origin": "http://evil.example"})
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["X-Frame-Options"] == "DENY"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_change_to_the_api_itself_is_answered_before_the_server_restarts(api: Api) -> None:
    token = api.token("admin")
    changed = api.call("PATCH", "/profile", token, headers={"If-Match": api.etag(token)},
                       json={"api": {"cors_origins": ["https://grafana.example"]}})  # fmt: skip
    assert changed.status_code == 200, changed.text

    def allowed() -> bool:
        try:
            response = api.call("GET", "/health/live", headers={"Origin": "https://grafana.example"})
        except requests.RequestException:
            return False
        return response.headers.get("Access-Control-Allow-Origin") == "https://grafana.example"

    assert wait_until(allowed, 30), api.appliance.log
    assert api.call("GET", "/profile", token).status_code == 200  # tokens outlive the restart


def test_the_openapi_document_is_generated_and_has_a_docs_page(api: Api) -> None:
    document = api.call("GET", "/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/cameras/{item_id}" in document["paths"] and "bearer" in document["components"]["securitySchemes"]
    assert api.call("GET", "/swagger").status_code == 200


def test_https_with_certificates_from_appliance_certs(data: Path, tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    made = subprocess.run([sys.executable, "-m", "appliance", "certs", "127.0.0.1", "localhost", "--out", str(tls)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (tls / "device.key").stat().st_mode & 0o777 == 0o600
    profile = PROFILE.replace("@X86@", str(PROFILES / "x86.yaml")).replace("@VIDEO@", str(data / PETS_VIDEO))
    https = f'api: {{listen: "127.0.0.1:@API_PORT@", tls: {{cert_file: {tls}/device.crt, key_file: {tls}/device.key}}}}'
    (tmp_path / "appliance").mkdir()
    appliance = RunningAppliance(
        tmp_path / "appliance", profile.replace('api: {listen: "127.0.0.1:@API_PORT@"}', https)
    )
    try:
        url = f"https://127.0.0.1:{appliance.api_port}/api/v1/health/live"
        assert wait_until(lambda: _answers(url, str(tls / "ca.crt")), 60), appliance.log
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, timeout=5)  # not trusted without the CA
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url.replace("https", "http"), timeout=5)
    finally:
        appliance.kill()


def _answers(url: str, ca: str) -> bool:
    try:
        return bool(requests.get(url, verify=ca, timeout=2).json() == {"status": "ok"})
    except requests.RequestException:
        return False


def test_auth_off_is_refused_anywhere_but_loopback(tmp_path: Path) -> None:
    profile = tmp_path / "open.yaml"
    profile.write_text("device: {id: open}\napi: {listen: '0.0.0.0:8080', auth: {enabled: false}}\n")
    refused = subprocess.run([sys.executable, "-m", "appliance", "validate", str(profile)], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2
    message = "api.listen: api.auth.enabled is false, so the API may only listen on loopback, not '0.0.0.0'"
    assert message in refused.stdout + refused.stderr
    profile.write_text("device: {id: open}\napi: {listen: '127.0.0.1:8080', auth: {enabled: false}}\n")
    assert subprocess.run([sys.executable, "-m", "appliance", "validate", str(profile)], timeout=60).returncode == 0


def test_schemathesis_finds_no_server_error_undocumented_status_or_schema_mismatch(api: Api, tmp_path: Path) -> None:
    """Property-based tests from the OpenAPI document, with an admin's token. Left out:
    `positive_data_acceptance`, since a write must name the profile's current revision in
    If-Match, which a generator cannot know (it gets 412, as documented). Last in this module:
    its failed logins use up the rate limit."""
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{api.base}/openapi.json", "--checks", "all",
               "--exclude-checks", "positive_data_acceptance", "--max-examples", "25", "--seed", "1",
               "--generation-database", "none", "-H", f"Authorization: Bearer {api.token('admin')}"]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its caches stay there
    summary = run.stdout[-3000:]
    assert run.returncode == 0, summary
    operations = sum(len(methods) for methods in api.call("GET", "/openapi.json").json()["paths"].values())
    assert f"Tested: {operations}" in summary and re.search(r"(\d+) generated, \1 passed", summary), summary
    print(summary)  # the figures for the closing note: operations, cases, failures
