# The appliance as a Nix package: a Python environment with exactly the versions and hashes in
# uv.lock (uv2nix reads it), binary wheels preferred as everywhere else, and the appliance
# itself built from this checkout. `extras`: the optional dependencies a hardware needs.
{ lib, pkgs, python3, uv2nix, pyproject-nix, pyproject-build-systems, extras ? [ ] }:
let
  workspace = uv2nix.lib.workspace.loadWorkspace { workspaceRoot = ../.; };
  locked = workspace.mkPyprojectOverlay { sourcePreference = "wheel"; };
  # manylinux wheels expect libraries a NixOS system keeps in the store: autoPatchelf finds them.
  native = final: prev: lib.genAttrs
    (lib.filter (name: prev ? ${name}) [ "opencv-python-headless" "openvino" "onnxruntime" "shapely" "ai-edge-litert" "matplotlib" "kiwisolver" "pillow" ])
    (name: prev.${name}.overrideAttrs (old: {
      nativeBuildInputs = (old.nativeBuildInputs or [ ]) ++ [ pkgs.autoPatchelfHook ];
      buildInputs = (old.buildInputs or [ ]) ++ [ pkgs.stdenv.cc.cc.lib pkgs.zlib pkgs.libGL pkgs.glib ];
      autoPatchelfIgnoreMissingDeps = [ "libcuda.so.1" "libedgetpu.so.1" "libOpenCL.so.1" ];
    }));
  pythonSet = (pkgs.callPackage pyproject-nix.build.packages { python = python3; }).overrideScope
    (lib.composeManyExtensions [ pyproject-build-systems.overlays.default locked native ]);
  environment = pythonSet.mkVirtualEnv "appliance-env" { appliance = extras; };
in
environment.overrideAttrs (old: {
  meta = (old.meta or { }) // {
    description = "Edge appliance that measures social distancing and occupancy from camera video";
    license = lib.licenses.asl20;
    mainProgram = "appliance";
    platforms = lib.platforms.linux;
  };
})
