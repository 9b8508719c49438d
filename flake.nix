{
  description = "Edge appliance that measures social distancing and occupancy from camera video";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
    # uv2nix builds the Python environment from uv.lock: the same versions and hashes as every
    # other install of the appliance.
    pyproject-nix = {
      url = "github:pyproject-nix/pyproject.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    uv2nix = {
      url = "github:pyproject-nix/uv2nix";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
    };
    pyproject-build-systems = {
      url = "github:pyproject-nix/build-system-pkgs";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.uv2nix.follows = "uv2nix";
    };
  };

  outputs = { self, nixpkgs, pyproject-nix, uv2nix, pyproject-build-systems }:
    let
      lib = nixpkgs.lib;
      hardwareKinds = import ./nix/hardware.nix;
      # The shipped profiles NixOS serves (jetson-nano: the OCI fallback, docs/image.md).
      profiles = {
        x86 = { path = ./profiles/x86.yaml; hardware = "x86"; };
        x86-openvino = { path = ./profiles/x86-openvino.yaml; hardware = "x86-openvino"; };
        x86-gpu-tensorrt = { path = ./profiles/x86-gpu-tensorrt.yaml; hardware = "x86-gpu"; };
        coral = { path = ./profiles/coral.yaml; hardware = "coral"; };
      };
      systems = lib.unique (map (kind: kind.system) (lib.attrValues hardwareKinds));
      forEachSystem = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      package = pkgs: extras: pkgs.callPackage ./nix/package.nix {
        inherit uv2nix pyproject-nix pyproject-build-systems extras;
      };
      # The profile validated and rendered by the appliance's own CLI, at build time: an invalid
      # profile fails here with the validator's message.
      render = pkgs: profile: pkgs.runCommand "appliance-profile.json" { } ''
        ${lib.getExe (package pkgs [ ])} show --format json ${profile} > $out
      '';
      system = { rendered, hardware, buildInfo ? null }:
        let
          profile = lib.importJSON rendered;
          kind = hardwareKinds.${hardware};
          # What `appliance build` writes; made here for the flake's own configurations.
          info = pkgs: if buildInfo != null then buildInfo else pkgs.writeText "build-info.json" (builtins.toJSON {
            version = (lib.importTOML ./pyproject.toml).project.version;
            revision = self.rev or self.dirtyRev or "unknown";
            source_date_epoch = self.lastModified or 0;
            profile = profile.device.id;
            profile_sha256 = builtins.hashFile "sha256" rendered;
            models = { };
          });
        in
        lib.nixosSystem {
          system = kind.system;
          modules = [
            self.nixosModules.appliance
            ./nix/image.nix
            ({ pkgs, ... }: {
              assertions = [{
                assertion = profile.device.hardware == hardware;
                message = "the profile is for ${profile.device.hardware}, the system for ${hardware}";
              }];
              services.appliance = {
                enable = true;
                package = package pkgs kind.extras;
                inherit profile;
                buildInfo = info pkgs;
              };
            })
          ];
        };
      systemFor = name: { path, hardware }:
        system {
          inherit hardware;
          rendered = render nixpkgs.legacyPackages.${hardwareKinds.${hardware}.system} path;
        };
    in
    {
      nixosModules.appliance = import ./nix/module.nix;

      nixosConfigurations = lib.mapAttrs systemFor profiles;

      # `appliance build --format nix` calls this with a profile it has validated and rendered.
      lib.image = { hardware, rendered, buildInfo ? null }:
        (self.lib.system { inherit hardware rendered buildInfo; }).config.system.build.applianceImage;
      lib.system = system;

      packages = forEachSystem (pkgs:
        {
          appliance = package pkgs [ ];
          default = package pkgs [ ];
        }
        // lib.mapAttrs' (name: configuration: lib.nameValuePair "image-${name}" configuration.config.system.build.applianceImage)
          (lib.filterAttrs (name: configuration: configuration.pkgs.stdenv.hostPlatform.system == pkgs.system)
            self.nixosConfigurations));

      checks = forEachSystem (pkgs: {
        profiles = pkgs.runCommand "appliance-profiles-valid" { } ''
          ${lib.getExe (package pkgs [ ])} validate --quiet ${./profiles}/*.yaml
          touch $out
        '';
      });

      devShells = forEachSystem (pkgs: {
        default = pkgs.mkShell { packages = [ pkgs.uv pkgs.ruff pkgs.mosquitto pkgs.podman ]; };
      });
    };
}
