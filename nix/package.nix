# The appliance as a Nix package: the same dependencies as pyproject.toml, from nixpkgs.
{ lib, python3Packages }:

python3Packages.buildPythonApplication {
  pname = "appliance";
  version = "0.1.0";
  pyproject = true;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../pyproject.toml
      ../README.md
      ../appliance
      ../schemas
    ];
  };

  build-system = [ python3Packages.hatchling ];

  dependencies = with python3Packages; [
    dacite
    jsonschema
    ruamel-yaml
    shapely
  ];

  pythonImportsCheck = [ "appliance.config" ];

  meta = {
    description = "Edge appliance that measures social distancing and occupancy from camera video";
    license = lib.licenses.asl20;
    mainProgram = "appliance";
    platforms = lib.platforms.linux;
  };
}
