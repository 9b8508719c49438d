# What the NixOS module needs from a profile, rendered to JSON by `appliance show --format json`
# (validated, resolved, defaults filled in, secrets masked). A pure function: it uses only the
# few `lib` functions listed in tests/nix/lib.nix, so the test evaluates it without nixpkgs.
{ lib }:
profile:
let
  inherit (builtins) any elem filter head length match toString;

  # "0.0.0.0:8080" -> { host = "0.0.0.0"; port = 8080; }; "[::1]:8080" as well.
  endpoint = listen:
    let parts = match "\\[?([^]]*)]?:([0-9]+)" listen;
    in { host = head parts; port = lib.toInt (lib.last parts); };
  loopback = host: elem host [ "127.0.0.1" "::1" "localhost" ];
  opened = section: section.enabled && !(loopback (endpoint section.listen).host);

  cameraDevices = filter (source: lib.hasPrefix "/dev/video" source)
    (map (camera: toString camera.source) (filter (camera: camera.enabled) profile.cameras));
  accelerators = {
    x86 = [ ];
    x86-openvino = [ "/dev/dri" ];
    x86-gpu = [ "/dev/nvidiactl" "/dev/nvidia0" "/dev/nvidia-uvm" ];
    coral = [ "/dev/apex_0" "char-usb_device" ];
    jetson-nano = [ "/dev/nvhost-ctrl" "/dev/nvmap" ];
  };

  # systemd's StateDirectory= takes names under /var/lib; anything else is a ReadWritePaths=.
  underVarLib = path: lib.hasPrefix "/var/lib/" path;
  writable = lib.unique [ profile.storage.data_dir profile.ota.inbox profile.ota.state_dir ];

  model = profile.detector.model.path or null;
  bakeModel = model != null && !(underVarLib model);
in
{
  deviceId = profile.device.id;
  hardware = profile.device.hardware;
  tcpPorts = lib.unique (map (section: (endpoint section.listen).port)
    (filter opened [ profile.api profile.metrics ]));
  devices = lib.unique (cameraDevices ++ accelerators.${profile.device.hardware});
  groups = lib.optionals (length cameraDevices > 0) [ "video" ]
    ++ lib.optionals (profile.device.hardware == "x86-openvino") [ "render" ]
    ++ lib.optionals (profile.device.hardware == "coral") [ "plugdev" ];
  stateDirectories = map (path: lib.removePrefix "/var/lib/" path) (filter underVarLib writable);
  # a folder inside another writable one needs no entry of its own
  readWritePaths = filter (path: !(underVarLib path) && !(any (other: lib.hasPrefix "${other}/" path) writable))
    writable;
  localBroker = {
    enable = profile.mqtt.enabled && loopback profile.mqtt.host;
    port = profile.mqtt.port;
  };
  ota = {
    enable = profile.ota.enabled && length profile.ota.trusted_keys > 0;
    inbox = profile.ota.inbox;
  };
  model = if bakeModel then { directory = dirOf model; file = baseNameOf model; } else null;
}
