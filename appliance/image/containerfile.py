"""The Containerfile of one profile's image: a builder stage installs the locked requirements
(hashes checked) and the appliance into a virtual environment and validates the profile; the
image copies that environment onto the same base and runs as an unprivileged user, with a
HEALTHCHECK on the API's readiness (or the metrics endpoint when the API is off).

Reproducible: every timestamp is SOURCE_DATE_EPOCH (`podman build --timestamp`), bytecode is
compiled with hash-based invalidation (Python does so when SOURCE_DATE_EPOCH is set), pip keeps
no cache and no log. A site's CA bundle (a TLS-inspecting proxy) reaches pip as a build secret,
never a layer."""

from __future__ import annotations

import json
from pathlib import Path

from appliance.config import LoadedProfile
from appliance.image.hardware import ImageTarget

VENV = "/opt/appliance"
SITE = f"{VENV}/site"
PROFILES = "profiles"  # the shipped profiles, under SITE
BUILD_INFO = f"{VENV}/build-info.json"
DATA_DIR = "/var/lib/appliance"
UID = 10001
CA_BUNDLE = "/run/secrets/ca-bundle"  # a site's CA bundle for pip, mounted during the build only
CONTINUED = " \\\n && "  # a long shell step, one command a line
WITH_CA = f"if [ -s {CA_BUNDLE} ]; then export PIP_CERT={CA_BUNDLE}; fi;"

TEMPLATE = """\
# The image of profile '{name}' ({hardware}), written by `appliance build`.
# Build it with that command: it sets BASE and SOURCE_DATE_EPOCH and builds reproducibly.
ARG BASE={base}

FROM $BASE AS builder
ARG SOURCE_DATE_EPOCH=0
ENV SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
{setup}COPY requirements.txt build-requirements.txt /build/
RUN --mount=type=secret,id=ca-bundle,target={ca_bundle} {with_ca} python3 -m venv /build/backend \\
 && /build/backend/bin/pip install --require-hashes --only-binary=:all: -r /build/build-requirements.txt \\
 && python3 -m venv {venv} \\
 && {venv}/bin/pip install --require-hashes --no-deps --only-binary=:all: -r /build/requirements.txt
COPY source/ /build/source/
RUN /build/backend/bin/pip wheel --no-deps --no-build-isolation --no-index -w /build/wheel /build/source \\
 && {venv}/bin/pip install --no-deps --no-index /build/wheel/*.whl
COPY site/ {site}/
COPY build-info.json {build_info}
RUN {venv}/bin/appliance validate {profile}

FROM $BASE
{setup}COPY --from=builder {venv} {venv}
RUN mkdir -p {data_dir} && chown {uid}:{uid} {data_dir}
ENV PATH={venv}/bin:/usr/local/bin:/usr/bin:/bin APPLIANCE_BUILD_INFO={build_info} PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 APPLIANCE_PROFILES={profiles}
USER {uid}:{uid}
WORKDIR {data_dir}
{expose}HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \\
    CMD {healthcheck}
ENTRYPOINT ["{venv}/bin/appliance"]
CMD ["run", "--profile", "{profile}"]
"""


def containerfile(loaded: LoadedProfile, target: ImageTarget, profile: Path, base: str) -> str:
    setup = "".join("RUN " + step.replace(" && ", CONTINUED) + "\n" for step in target.setup)
    ports = sorted({_port(listen) for listen in _listening(loaded)})
    expose = f"EXPOSE {' '.join(map(str, ports))}\n" if ports else ""
    return TEMPLATE.format(
        name=loaded.name, hardware=target.hardware, base=base, setup=setup, venv=VENV,
        site=SITE, build_info=BUILD_INFO, profile=profile, data_dir=DATA_DIR, uid=UID, expose=expose,
        healthcheck=json.dumps([f"{VENV}/bin/python", "-c", _probe(loaded)]), ca_bundle=CA_BUNDLE, with_ca=WITH_CA,
        profiles=f"{SITE}/{PROFILES}",
    )  # fmt: skip


def _listening(loaded: LoadedProfile) -> list[str]:
    profile = loaded.profile
    return [c.listen for c in (profile.api, profile.metrics) if c.enabled]


def _port(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def _probe(loaded: LoadedProfile) -> str:
    """A Python one-liner that fails unless the appliance is ready: the API's readiness, or the
    metrics endpoint when the API is off; on loopback, whatever address the profile listens on."""
    api, metrics = loaded.profile.api, loaded.profile.metrics
    if api.enabled:
        scheme = "https" if api.tls.cert_file else "http"
        url = f"{scheme}://127.0.0.1:{_port(api.listen)}/api/v1/health/ready"
    elif metrics.enabled:
        url = f"http://127.0.0.1:{_port(metrics.listen)}/metrics"
    else:
        return "import sys; sys.exit(0)"
    return ("import ssl, urllib.request; urllib.request.urlopen("
            f"{url!r}, timeout=4, context=ssl._create_unverified_context())")  # fmt: skip
