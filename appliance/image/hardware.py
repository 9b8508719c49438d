"""What each kind of hardware (`device.hardware`) needs in its image."""

from __future__ import annotations

from dataclasses import dataclass

DEBIAN_SUITE = "bookworm"  # its Python 3.11 is the least the appliance needs


@dataclass(frozen=True)
class ImageTarget:
    hardware: str
    platform: str  # the OCI platform
    requirements: str  # oci/requirements/<name>.txt
    base: str | None  # an image to build on; None: a Debian base made here with debootstrap
    setup: tuple[str, ...] = ()  # shell steps run in both stages before anything else
    nix_system: str | None = None  # the NixOS system; None when NixOS cannot serve it
    devices: tuple[str, ...] = ()  # device nodes the accelerator needs

    @property
    def debian_arch(self) -> str:
        return "arm64" if self.platform == "linux/arm64" else "amd64"


EDGETPU_RUNTIME = (
    "apt-get update && apt-get install -y --no-install-recommends curl gnupg"
    " && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg"
    " | gpg --dearmor -o /usr/share/keyrings/coral.gpg"
    " && echo 'deb [signed-by=/usr/share/keyrings/coral.gpg] https://packages.cloud.google.com/apt"
    " coral-edgetpu-stable main' > /etc/apt/sources.list.d/coral.list"
    " && apt-get update && apt-get install -y --no-install-recommends libedgetpu1-std"
    " && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/ldconfig/aux-cache"
)
CUDA_PYTHON = (
    "apt-get update && apt-get install -y --no-install-recommends python3 python3-venv"
    " && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/ldconfig/aux-cache"
)
# JetPack 4 (L4T r32) is Ubuntu 18.04 with Python 3.6: Python 3.11 comes from the deadsnakes PPA.
L4T_PYTHON = (
    "apt-get update && apt-get install -y --no-install-recommends software-properties-common"
    " && add-apt-repository -y ppa:deadsnakes/ppa && apt-get update"
    " && apt-get install -y --no-install-recommends python3.11 python3.11-venv"
    " && ln -sf /usr/bin/python3.11 /usr/local/bin/python3"
    " && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/ldconfig/aux-cache"
)

TARGETS = {
    target.hardware: target
    for target in (
        ImageTarget("x86", "linux/amd64", "default", None, nix_system="x86_64-linux"),
        ImageTarget("x86-openvino", "linux/amd64", "default", None, nix_system="x86_64-linux", devices=("/dev/dri",)),
        ImageTarget(
            "x86-gpu",
            "linux/amd64",
            "tensorrt",
            "nvcr.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04",
            setup=(CUDA_PYTHON,),
            nix_system="x86_64-linux",
        ),
        ImageTarget(
            "coral",
            "linux/arm64",
            "edgetpu",
            None,
            setup=(EDGETPU_RUNTIME,),
            nix_system="aarch64-linux",
            devices=("/dev/apex_0", "/dev/bus/usb"),
        ),
        ImageTarget("jetson-nano", "linux/arm64", "default", "nvcr.io/nvidia/l4t-base:r32.7.1", setup=(L4T_PYTHON,)),
    )
}
