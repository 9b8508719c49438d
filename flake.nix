{
  description = "Edge appliance that measures social distancing and occupancy from camera video";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forEachSystem = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forEachSystem (pkgs: rec {
        appliance = pkgs.callPackage ./nix/package.nix { };
        default = appliance;
      });

      checks = forEachSystem (pkgs: {
        profiles = pkgs.runCommand "appliance-profiles-valid" { } ''
          ${self.packages.${pkgs.system}.appliance}/bin/appliance validate --quiet ${./profiles}/*.yaml
          touch $out
        '';
      });

      devShells = forEachSystem (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.system}.appliance ];
          packages = [ pkgs.uv pkgs.ruff pkgs.mosquitto ];
        };
      });
    };
}
