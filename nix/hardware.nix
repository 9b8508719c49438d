# Which NixOS system and which Python extras each `device.hardware` needs (as in
# appliance/image/hardware.py). jetson-nano is absent: JetPack 4 is not served by NixOS, its
# image is the OCI fallback (docs/image.md).
{
  x86 = { system = "x86_64-linux"; extras = [ ]; };
  x86-openvino = { system = "x86_64-linux"; extras = [ ]; };
  x86-gpu = { system = "x86_64-linux"; extras = [ "tensorrt" ]; };
  coral = { system = "aarch64-linux"; extras = [ "edgetpu" ]; };
}
