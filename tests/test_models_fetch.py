"""`appliance models fetch` against a real HTTP server on loopback acting as a mirror."""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import models as modelstore
from appliance.models import sha256_of
from tests.conftest import run_cli
from tests.hostile import bounded_cli
from tests.servers import free_port

YOLOX = "models/yolox_nano_onnx/yolox_nano.onnx"
YOLOX_SHA256 = "d39bee73564e338080378b0ad567fbb40e818b55bbfaf971de82a0267ed16b8a"
RETAIL = "models/openvino/person-detection-retail-0013/FP32/person-detection-retail-0013"


@pytest.fixture
def mirror(tmp_path: Path, data: Path) -> Iterator[str]:
    """An HTTP server serving kit files laid out as MIRROR/NAME/PATH."""
    root = tmp_path / "mirror"
    for name, path, source in [
        ("yolox-nano", "yolox_nano.onnx", YOLOX),
        ("person-detection-retail-0013", "FP32/person-detection-retail-0013.xml", RETAIL + ".xml"),
        ("person-detection-retail-0013", "FP32/person-detection-retail-0013.bin", RETAIL + ".bin"),
    ]:
        (root / name / path).parent.mkdir(parents=True, exist_ok=True)
        (root / name / path).symlink_to((data / source).resolve())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def site_catalog(tmp_path: Path) -> Path:
    entry = {
        "name": "yolox-nano",
        "description": "YOLOX-Nano, COCO, 416x416 ONNX",
        "license": "Apache-2.0",
        "backend": "onnxruntime",
        "files": [
            {
                "path": "yolox_nano.onnx",
                "url": "https://models.example/yolox_nano.onnx",
                "digest": f"sha256:{YOLOX_SHA256}",
                "size": 3713911,
            }
        ],
    }
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps([entry]))
    return path


def test_fetch_verifies_and_caches_then_reuses_the_cache(mirror: str, site_catalog: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = run_cli(
        "models", "fetch", "yolox-nano", "--cache", str(cache), "--mirror", mirror, "--catalog", str(site_catalog)
    )
    assert result.returncode == 0, result.stderr
    fetched = cache / "yolox-nano" / "yolox_nano.onnx"
    assert sha256_of(fetched) == YOLOX_SHA256
    assert f"sha256: {YOLOX_SHA256}" in result.stdout
    assert "100% of 3.7 MB" in result.stderr
    offline = run_cli(
        "models",
        "fetch",
        "yolox-nano",
        "--cache",
        str(cache),
        "--mirror",
        f"http://127.0.0.1:{free_port()}",
        "--catalog",
        str(site_catalog),
    )
    assert offline.returncode == 0, offline.stderr  # already cached and verified: no download


def test_a_file_that_does_not_match_the_pinned_digest_is_refused(mirror: str, tmp_path: Path) -> None:
    """The kit's copy of person-detection-retail-0013 is an older IR than the one Intel pins."""
    cache = tmp_path / "cache"
    with pytest.raises(modelstore.FetchError, match=r"has sha384 [0-9a-f]{96}, but 0a346bc3.* is pinned: refusing it"):
        modelstore.fetch(modelstore.CATALOG["person-detection-retail-0013"], cache, mirror=mirror)
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_offline_fetch_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = run_cli(
        "models",
        "fetch",
        "pedestrian-detection-adas-0002",
        "--cache",
        str(tmp_path),
        "--mirror",
        f"http://127.0.0.1:{free_port()}",
    )
    assert result.returncode == 1
    assert "cannot download http://127.0.0.1:" in result.stderr
    assert "Connection refused" in result.stderr
    assert "Offline? Copy the file to" in result.stderr
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_unknown_model_lists_the_known_ones(tmp_path: Path) -> None:
    result = run_cli("models", "fetch", "yolov99", "--cache", str(tmp_path))
    assert result.returncode == 2
    assert (
        "unknown model(s): yolov99; known: person-detection-retail-0013, pedestrian-detection-adas-0002"
        in result.stderr
    )


def test_list_shows_licences() -> None:
    result = run_cli("models", "list")
    assert result.returncode == 0
    assert all("Apache-2.0" in line or "MIT" in line for line in result.stdout.splitlines())


@pytest.mark.parametrize("fault", ["a file path out of the cache", "an absolute model name", "a FIFO", "not JSON"])
def test_a_hostile_catalog_is_refused_before_anything_is_fetched(
    fault: str, site_catalog: Path, tmp_path: Path
) -> None:
    entries = json.loads(site_catalog.read_text())
    if fault == "a file path out of the cache":
        entries[0]["files"][0]["path"] = "../../outside.onnx"
    elif fault == "an absolute model name":
        entries[0]["name"] = "/etc"
    site_catalog.write_text(json.dumps(entries))
    if fault == "a FIFO":
        site_catalog.unlink()
        os.mkfifo(site_catalog)
    elif fault == "not JSON":
        site_catalog.write_text("[{")
    name = entries[0]["name"]
    outcome = bounded_cli("models", "fetch", name, "--cache", str(tmp_path / "cache"), "--catalog", str(site_catalog),
                          cwd=tmp_path)  # fmt: skip
    assert outcome.returncode == 2, outcome.output
    assert f"model catalog {site_catalog}" in outcome.stderr and "Traceback" not in outcome.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path.parent / "outside.onnx").exists()
