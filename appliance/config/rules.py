"""Rules across fields that JSON Schema cannot express.

They run on defaults-filled data that may still hold schema errors, so each rule skips values
of the wrong shape: the schema reports those."""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from appliance.config.backends import BACKENDS, COMMON_SETTINGS, BackendSpec
from appliance.config.errors import JsonPath, ProfileIssue
from appliance.config.merge import MergedProfile
from appliance.config.schema import profile_schema, resolve
from appliance.planar import (
    MIN_CALIBRATION_POINTS,
    calibration_problem,
    outside_image,
    polygon_problem,
    polyline_problem,
)

Finding = tuple[JsonPath, str]
NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def check_rules(data: dict[str, Any], merged: MergedProfile) -> list[ProfileIssue]:
    """Every cross-field problem in `data`, located in the files it was merged from."""
    issues = []
    for rule in RULES:
        for path, message in rule(data):
            issues.append(ProfileIssue(merged.location(path), path, message))
    return issues


def _dicts(value: Any) -> list[tuple[int, dict[str, Any]]]:
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def unique_ids(data: dict[str, Any]) -> Iterator[Finding]:
    for section, noun in (("cameras", "camera"), ("areas", "area")):
        first_index: dict[str, int] = {}
        for index, item in _dicts(data.get(section)):
            item_id = item.get("id")
            if not isinstance(item_id, str):
                continue
            if item_id in first_index:
                yield (
                    (section, index, "id"),
                    f"duplicate {noun} id '{item_id}' (also {section}[{first_index[item_id]}])",
                )
            else:
                first_index[item_id] = index


def area_cameras_exist(data: dict[str, Any]) -> Iterator[Finding]:
    camera_ids = list(dict.fromkeys(c.get("id") for _, c in _dicts(data.get("cameras"))))
    known = ", ".join(str(i) for i in camera_ids) or "none"
    for index, area in _dicts(data.get("areas")):
        names = area.get("cameras")
        for position, name in enumerate(names if isinstance(names, list) else []):
            if isinstance(name, str) and name not in camera_ids:
                yield (
                    ("areas", index, "cameras", position),
                    f"unknown camera '{name}' (cameras: {known})",
                )


def area_places_exist(data: dict[str, Any]) -> Iterator[Finding]:
    """An area's zones and entrances name a camera's zone and line; a zone of a camera the area
    counts whole would count its people twice; an area counts something."""
    cameras = {c.get("id"): c for _, c in _dicts(data.get("cameras"))}
    for index, area in _dicts(data.get("areas")):
        whole: list[Any] = area["cameras"] if isinstance(area.get("cameras"), list) else []
        if not whole and not area.get("zones") and not area.get("entrances"):
            yield ("areas", index), "an area needs cameras, zones or entrances to count people by"
        for key, kind in (("zones", "zone"), ("entrances", "line")):
            names = area.get(key)
            for position, name in enumerate(names if isinstance(names, list) else []):
                if isinstance(name, str) and (problem := _place_problem(cameras, name, kind, whole)):
                    yield ("areas", index, key, position), problem


def _place_problem(cameras: dict[Any, dict[str, Any]], name: str, kind: str, whole: list[Any]) -> str | None:
    camera_id, _, place_id = name.partition("/")
    camera = cameras.get(camera_id)
    if camera is None:
        return f"unknown camera '{camera_id}' (cameras: {', '.join(str(c) for c in cameras) or 'none'})"
    places = [p.get("id") for _, p in _dicts(camera.get(f"{kind}s"))]
    if place_id not in places:
        return f"camera '{camera_id}' has no {kind} '{place_id}' ({kind}s: {', '.join(map(str, places)) or 'none'})"
    if kind == "zone" and camera_id in whole:
        return f"camera '{camera_id}' is in this area's cameras already, so its zone would count people twice"
    return None


def severity_order(data: dict[str, Any]) -> Iterator[Finding]:
    distancing = data.get("distancing")
    grades = distancing.get("severity") if isinstance(distancing, dict) else None
    if not isinstance(grades, dict):
        return
    values = [v for key in ("low_s", "high_s", "critical_s") if isinstance(v := grades.get(key), int | float)]
    if len(values) == 3 and not values[0] <= values[1] <= values[2]:
        yield ("distancing", "severity"), "expected low_s <= high_s <= critical_s"


def time_zone(data: dict[str, Any]) -> Iterator[Finding]:
    device = data.get("device")
    name = device.get("timezone") if isinstance(device, dict) else None
    if isinstance(name, str) and not _known_time_zone(name):
        yield ("device", "timezone"), f"unknown time zone '{name}'; expected an IANA name such as Europe/Paris or UTC"


def _known_time_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def camera_sources(data: dict[str, Any]) -> Iterator[Finding]:
    for index, camera in _dicts(data.get("cameras")):
        source = camera.get("source")
        if isinstance(source, str) and "://" in source:
            problem = url_problem(source)
            if problem:
                yield ("cameras", index, "source"), problem


def url_problem(url: str) -> str | None:
    """Why `url` is not a usable stream or file URL, or None."""
    if any(ch.isspace() for ch in url):
        return f"URL '{url}' contains whitespace"
    parts = urlsplit(url)
    allowed = (*NETWORK_SCHEMES, "file")
    if parts.scheme.lower() not in allowed:
        return f"URL scheme '{parts.scheme}' is not supported; expected one of: {', '.join(allowed)}"
    if parts.scheme.lower() == "file":
        return None if parts.path else f"file URL '{url}' has no path"
    if not parts.hostname:
        return f"URL '{url}' has no host"
    try:
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        return f"URL '{url}' has an invalid port"
    return None


def roi_polygons(data: dict[str, Any]) -> Iterator[Finding]:
    for index, camera in _dicts(data.get("cameras")):
        roi = camera.get("roi")
        if _is_point_list(roi) and len(roi) >= 3:
            problem = polygon_problem([(p[0], p[1]) for p in roi])
            if problem:
                yield ("cameras", index, "roi"), problem


def zones_and_lines(data: dict[str, Any]) -> Iterator[Finding]:
    """Each camera's zones and lines: unique ids, a simple polygon, segments of some length,
    inside the image, and floor units only on a calibrated camera."""
    for index, camera in _dicts(data.get("cameras")):
        seen: set[str] = set()
        for key, shape in (("zones", "polygon"), ("lines", "points")):
            for position, item in _dicts(camera.get(key)):
                path = ("cameras", index, key, position)
                if isinstance(item_id := item.get("id"), str):
                    if item_id in seen:
                        yield (
                            (*path, "id"),
                            f"duplicate id '{item_id}' among this camera's zones and lines",
                        )
                    seen.add(item_id)
                if _is_point_list(points := item.get(shape)):
                    yield from _shape_problems(camera, path, shape, [(p[0], p[1]) for p in points], item.get("units"))


def _shape_problems(
    camera: dict[str, Any], path: JsonPath, shape: str, points: list[tuple[float, float]], units: Any
) -> Iterator[Finding]:
    problem = polygon_problem(points) if shape == "polygon" else polyline_problem(points)
    if problem:
        yield (*path, shape), problem
    if units == "floor_cm":
        distance = camera.get("distance")
        if not isinstance(distance, dict) or distance.get("calibration") is None:
            yield (*path, "units"), "floor_cm needs the camera's distance.calibration, which is not set"
        return
    resolution = camera.get("resolution")
    size = (resolution[0], resolution[1]) if _is_size(resolution) else None
    if (point := outside_image(points, size)) is not None:
        frame = f"the {size[0]}x{size[1]} frame" if size else "the frame (no coordinate may be negative)"
        yield (*path, shape), f"point [{point[0]:g}, {point[1]:g}] lies outside {frame}"


def _is_size(value: Any) -> TypeGuard[list[int]]:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)


def calibrations(data: dict[str, Any]) -> Iterator[Finding]:
    distancing = data.get("distancing")
    default_method = distancing.get("default_method") if isinstance(distancing, dict) else None
    for index, camera in _dicts(data.get("cameras")):
        distance = camera.get("distance")
        if not isinstance(distance, dict):
            continue
        method = distance.get("method") or default_method
        points = distance.get("calibration")
        path = ("cameras", index, "distance", "calibration")
        if points is None:
            if method == "calibrated":
                yield path, "the 'calibrated' distance method needs calibration points"
            continue
        pairs = [p for _, p in _dicts(points)]
        image, floor = [p.get("image") for p in pairs], [p.get("floor") for p in pairs]
        complete = isinstance(points, list) and len(pairs) == len(points)
        if complete and _is_point_list(image) and _is_point_list(floor):
            image_points, floor_points = [(p[0], p[1]) for p in image], [(p[0], p[1]) for p in floor]
            if problem := calibration_problem(image_points, floor_points):
                yield path, problem
            elif len(image_points) > MIN_CALIBRATION_POINTS and (misfit := _misfit(image_points, floor_points)):
                index, off_cm = misfit
                yield (
                    (*path, index),
                    f"this point does not fit the others: fitted to them, it lands {off_cm / 100:.1f} m "
                    "from the floor position given; check its image and floor coordinates",
                )


def _misfit(image: list[tuple[float, float]], floor: list[tuple[float, float]]) -> tuple[int, float] | None:
    """The calibration point that does not fit the others; needs numpy and OpenCV, imported only
    for calibrations with more points than a homography needs, so validating stays quick."""
    from appliance.geometry import calibration_misfit

    return calibration_misfit(image, floor)


def model_file(data: dict[str, Any]) -> Iterator[Finding]:
    detector = data.get("detector")
    if not isinstance(detector, dict) or not isinstance(detector.get("model"), dict):
        return
    backend = _backend(detector)
    if backend is None:
        return
    path = detector["model"].get("path")
    if path is None and backend.model_required:
        yield ("detector", "model", "path"), f"the '{backend.name}' backend needs a model file"
    elif isinstance(path, str) and PurePosixPath(path).suffix.lower() not in backend.model_suffixes:
        expected = " or ".join(backend.model_suffixes)
        yield (
            ("detector", "model", "path"),
            f"the '{backend.name}' backend loads {expected} files, not '{path}'",
        )


def face_model_files(data: dict[str, Any]) -> Iterator[Finding]:
    """A face stage that is on names its model, an .onnx file."""
    anonymizer = data.get("anonymizer")
    stages = {("anonymizer", "faces"): anonymizer.get("faces") if isinstance(anonymizer, dict) else None,
              ("masks",): data.get("masks")}  # fmt: skip
    for key, stage in stages.items():
        if not isinstance(stage, dict) or stage.get("enabled") is not True or not isinstance(stage.get("model"), dict):
            continue
        path = stage["model"].get("path")
        where = (*key, "model", "path")
        if path is None:
            yield where, f"{key[-1]} are enabled: name the face detector's model file"
        elif isinstance(path, str) and PurePosixPath(path).suffix.lower() != ".onnx":
            yield where, f"a face detector loads .onnx files, not '{path}'"


def backend_settings(data: dict[str, Any]) -> Iterator[Finding]:
    """A detector setting changed from its default that the chosen backend does not read."""
    detector = data.get("detector")
    if not isinstance(detector, dict) or (backend := _backend(detector)) is None:
        return
    schema = profile_schema()
    properties = resolve(schema, schema["properties"]["detector"])["properties"]
    for key, value in detector.items():
        if key in COMMON_SETTINGS or key in backend.settings or value == properties.get(key, {}).get("default"):
            continue
        users = [b.name for b in BACKENDS.values() if key in b.settings]
        yield (
            ("detector", key),
            f"the '{backend.name}' backend does not use this setting (used by: {', '.join(users) or 'none'})",
        )


def _backend(detector: dict[str, Any]) -> BackendSpec | None:
    return BACKENDS.get(str(detector.get("backend")))


def tls_pairs(data: dict[str, Any]) -> Iterator[Finding]:
    for section in ("api", "mqtt"):
        block = data.get(section)
        tls = block.get("tls") if isinstance(block, dict) else None
        if not isinstance(tls, dict):
            continue
        cert, key = tls.get("cert_file"), tls.get("key_file")
        if cert and not key:
            yield (section, "tls", "key_file"), "cert_file is set, so key_file is required"
        if key and not cert:
            yield (section, "tls", "cert_file"), "key_file is set, so cert_file is required"


def listen_addresses(data: dict[str, Any]) -> Iterator[Finding]:
    for section in ("metrics", "api"):
        block = data.get(section)
        listen = block.get("listen") if isinstance(block, dict) else None
        if isinstance(listen, str) and (problem := listen_problem(listen)):
            yield (section, "listen"), problem


def api_without_auth(data: dict[str, Any]) -> Iterator[Finding]:
    """With auth off, the API must not be reachable from the network."""
    api = data.get("api")
    if not isinstance(api, dict) or not api.get("enabled", True):
        return
    auth, listen = api.get("auth"), api.get("listen")
    if isinstance(auth, dict) and auth.get("enabled") is False and isinstance(listen, str):
        host = listen.rpartition(":")[0].strip("[]")
        if host != "localhost" and not _is_loopback(host):
            yield ("api", "listen"), f"api.auth.enabled is false, so the API may only listen on loopback, not '{host}'"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_problem(listen: str) -> str | None:
    """Why HOST:PORT (already matching the schema's pattern) cannot be listened on, or None."""
    host, _, port = listen.rpartition(":")
    if port.isdigit() and not 1 <= int(port) <= 65535:
        return f"port {port} is out of range 1-65535"
    try:
        if host.startswith("["):
            ipaddress.IPv6Address(host[1:-1])
        elif re.fullmatch(r"[0-9.]+", host):
            ipaddress.IPv4Address(host)
        elif len(host) > 253 or not all(
            re.fullmatch(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)", label) for label in host.split(".")
        ):
            return f"'{host}' is not a valid host name"
    except ValueError:
        return f"'{host}' is not a valid IP address"
    return None


def _is_point_list(value: Any) -> TypeGuard[list[list[float]]]:
    return isinstance(value, list) and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(c, int | float) and not isinstance(c, bool) for c in p)
        for p in value
    )


CHANNEL_KINDS = ("email", "slack", "webhooks")


def channels(data: dict[str, Any]) -> Iterator[Finding]:
    """Channel ids are unique across kinds, and every alert rule and report names known ones."""
    notifications = _mapping(data, "notifications")
    known: dict[str, str] = {}
    for kind in CHANNEL_KINDS:
        for index, channel in _dicts(notifications.get(kind)):
            channel_id = channel.get("id")
            if not isinstance(channel_id, str):
                continue
            if channel_id in known:
                message = f"duplicate channel id '{channel_id}' (also {known[channel_id]})"
                yield ("notifications", kind, index, "id"), message
            known.setdefault(channel_id, f"notifications.{kind}[{index}]")
    names = ", ".join(known) or "none"
    routes: list[tuple[JsonPath, Any]] = [
        (("notifications", report, "channels"), _mapping(notifications, report).get("channels"))
        for report in ("daily_report", "weekly_report")
    ]
    for index, area in _dicts(data.get("areas")):
        for rule in ("occupancy_alert", "violation_alert", "loitering_alert", "mask_alert"):
            routes.append((("areas", index, rule, "channels"), _mapping(area, rule).get("channels")))
    for path, named in routes:
        for position, name in enumerate(named if isinstance(named, list) else []):
            if isinstance(name, str) and name not in known:
                yield (*path, position), f"unknown channel '{name}' (channels: {names})"


def channel_urls(data: dict[str, Any]) -> Iterator[Finding]:
    """Webhook, Slack and S3 endpoint URLs are http(s) with a host; a Slack URL is a secret, so
    its message never quotes it."""
    notifications = _mapping(data, "notifications")
    for kind, secret in (("webhooks", False), ("slack", True)):
        for index, channel in _dicts(notifications.get(kind)):
            if isinstance(channel.get("url"), str) and (problem := _http_url_problem(channel["url"], secret=secret)):
                yield ("notifications", kind, index, "url"), problem
    s3 = _mapping(data, "s3")
    if isinstance(s3.get("endpoint_url"), str) and (problem := _http_url_problem(s3["endpoint_url"], secret=False)):
        yield ("s3", "endpoint_url"), problem
    if (s3.get("access_key_id") is None) != (s3.get("secret_access_key") is None):
        yield ("s3",), "set access_key_id and secret_access_key together, or neither (boto3 then finds them)"
    cameras = [c.get("id") for _, c in _dicts(data.get("cameras"))]
    named = _mapping(s3, "screenshots").get("cameras")
    for position, name in enumerate(named if isinstance(named, list) else []):
        if isinstance(name, str) and name not in cameras:
            yield ("s3", "screenshots", "cameras", position), f"unknown camera '{name}'"


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _http_url_problem(url: str, *, secret: bool) -> str | None:
    shown = "the URL" if secret else f"URL '{url}'"
    parts = urlsplit(url)
    if any(ch.isspace() for ch in url) or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"{shown} is not an http:// or https:// URL with a host"
    try:
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        return f"{shown} has an invalid port"
    return None


RULES: tuple[Callable[[dict[str, Any]], Iterator[Finding]], ...] = (
    unique_ids,
    area_cameras_exist,
    area_places_exist,
    time_zone,
    severity_order,
    camera_sources,
    roi_polygons,
    zones_and_lines,
    calibrations,
    model_file,
    face_model_files,
    backend_settings,
    tls_pairs,
    listen_addresses,
    api_without_auth,
    channels,
    channel_urls,
)
