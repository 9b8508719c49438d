"""Building the appliance's image for one profile: a NixOS system (flake.nix and nix/) or, as the
fallback, an OCI image built with podman; `appliance build` drives either (docs/image.md)."""
