# The NixOS module: the appliance runtime as a hardened service, its OTA inbox watch, its state
# folders, an optional local mosquitto and the firewall ports the profile opens, all from one
# validated profile rendered to JSON (settings.nix turns it into what is set here).
#
# The profile goes into the store with its secrets masked: keep secrets in files (`*_file` keys)
# outside the store. The live profile is /var/lib/appliance/profile.json, seeded from the store
# whenever a new build brings a different profile, so API and OTA changes hold until then.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.appliance;
  settings = import ./settings.nix { inherit lib; } cfg.profile;
  modelDirectory = builtins.path { path = /. + settings.model.directory; name = "appliance-model"; };
  profile = lib.recursiveUpdate cfg.profile (lib.optionalAttrs (settings.model != null) {
    detector.model.path = "${modelDirectory}/${settings.model.file}";
  });
  seed = pkgs.writeText "appliance-profile.json" (builtins.toJSON profile);
  live = "/var/lib/appliance/profile.json";
  appliance = lib.getExe cfg.package;
  hardening = {
    DynamicUser = true;
    UMask = "0077";
    NoNewPrivileges = true;
    CapabilityBoundingSet = "";
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    ProtectProc = "invisible";
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "@system-service" ];
    StateDirectory = lib.unique ([ "appliance" ] ++ settings.stateDirectories);
    ReadWritePaths = settings.readWritePaths;
    Environment = lib.optional (cfg.buildInfo != null) "APPLIANCE_BUILD_INFO=${cfg.buildInfo}";
  };
in
{
  options.services.appliance = {
    enable = lib.mkEnableOption "the distancing appliance runtime";
    package = lib.mkOption {
      type = lib.types.package;
      description = "The appliance (nix/package.nix, with the extras its hardware needs).";
    };
    profile = lib.mkOption {
      type = lib.types.attrs;
      description = "The profile, as `appliance show --format json` renders it.";
    };
    buildInfo = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      description = "build-info.json (version, revision, profile and model hashes), shown in /metrics and the API.";
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.appliance = {
      description = "Distancing appliance runtime";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ] ++ lib.optional settings.localBroker.enable "mosquitto.service";
      startLimitIntervalSec = 600;
      startLimitBurst = 5;
      # A new build's profile replaces the live one; the same build's keeps API and OTA changes.
      preStart = ''
        if [ "$(cat ${live}.seed 2>/dev/null)" != "${seed}" ]; then
          install -m 0600 ${seed} ${live}.new && mv ${live}.new ${live} && echo ${seed} > ${live}.seed
        fi
        ${appliance} validate --quiet ${live}
      '';
      serviceConfig = hardening // {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = "${appliance} run --profile ${live}";
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        Restart = "on-failure";
        RestartSec = 5;
        WatchdogSec = 30;
        TimeoutStopSec = 20;
        SupplementaryGroups = settings.groups;
        DevicePolicy = "closed";
        DeviceAllow = map (device: "${device} rw") settings.devices;
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
      };
    };

    systemd.paths.appliance-ota = lib.mkIf settings.ota.enable {
      description = "Distancing appliance OTA inbox";
      wantedBy = [ "multi-user.target" ];
      pathConfig = {
        PathChanged = settings.ota.inbox;
        MakeDirectory = true;
        DirectoryMode = "0750";
      };
    };
    systemd.services.appliance-ota = lib.mkIf settings.ota.enable {
      description = "Distancing appliance OTA applier";
      serviceConfig = hardening // {
        Type = "oneshot";
        ExecStart = "${appliance} ota apply --profile ${live}";
        TimeoutStartSec = "15min";
        PrivateDevices = true;
        PrivateNetwork = true;
        IPAddressDeny = "any";
        RestrictAddressFamilies = [ "AF_UNIX" ];
      };
    };

    services.mosquitto = lib.mkIf settings.localBroker.enable {
      enable = true;
      listeners = [{
        address = "127.0.0.1";
        port = settings.localBroker.port;
        omitPasswordAuth = true;  # loopback only: the appliance and local subscribers
        settings.allow_anonymous = true;
        acl = [ "pattern readwrite #" ];
      }];
    };

    networking.firewall.allowedTCPPorts = settings.tcpPorts;
    networking.hostName = lib.mkDefault settings.deviceId;
  };
}
