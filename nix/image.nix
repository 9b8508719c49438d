# The flashable image of a NixOS appliance: a raw EFI disk for x86 machines, an SD card image for
# aarch64 boards (the Coral Dev Board class). Either is `config.system.build.applianceImage`.
{ config, lib, pkgs, modulesPath, ... }:
let
  aarch64 = pkgs.stdenv.hostPlatform.isAarch64;
in
{
  imports = lib.optional aarch64 "${modulesPath}/installer/sd-card/sd-image-aarch64.nix";

  config = lib.mkMerge [
    {
      system.stateVersion = "25.05";
      boot.loader.grub.enable = lib.mkDefault false;
      services.openssh.enable = lib.mkDefault true;
      services.openssh.settings.PasswordAuthentication = false;
      documentation.enable = false;
    }
    (lib.mkIf (!aarch64) {
      boot.loader.systemd-boot.enable = true;
      boot.loader.efi.canTouchEfiVariables = false;
      fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; autoResize = true; };
      fileSystems."/boot" = { device = "/dev/disk/by-label/ESP"; fsType = "vfat"; };
      boot.growPartition = true;
      system.build.applianceImage = import "${modulesPath}/../lib/make-disk-image.nix" {
        inherit config lib pkgs;
        format = "raw";
        partitionTableType = "efi";
        diskSize = "auto";
        additionalSpace = "1024M";
      };
    })
    (lib.mkIf aarch64 {
      system.build.applianceImage = config.system.build.sdImage;
    })
  ];
}
