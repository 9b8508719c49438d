# The nixpkgs `lib` functions that nix/settings.nix and nix/module.nix use, written here so that
# the tests evaluate both with Debian's nix and no nixpkgs. Same meaning as nixpkgs' lib, except
# that option declarations are kept as they are and `mkIf` is applied at once (there is no module
# system here to merge definitions).
let
  inherit (builtins) attrNames elem foldl' fromJSON isAttrs length listToAttrs stringLength substring elemAt match;
in
rec {
  last = list: elemAt list (length list - 1);
  toInt = string:
    if match "[0-9]+" string == null then throw "toInt: '${string}' is not a number" else fromJSON string;
  hasPrefix = prefix: string: substring 0 (stringLength prefix) string == prefix;
  removePrefix = prefix: string:
    if hasPrefix prefix string then substring (stringLength prefix) (stringLength string) string else string;
  unique = foldl' (kept: item: if elem item kept then kept else kept ++ [ item ]) [ ];
  optional = condition: item: if condition then [ item ] else [ ];
  optionals = condition: list: if condition then list else [ ];
  optionalAttrs = condition: set: if condition then set else { };
  recursiveUpdate = left: right: left // listToAttrs (map
    (name: {
      inherit name;
      value = if isAttrs (left.${name} or null) && isAttrs right.${name}
        then recursiveUpdate left.${name} right.${name} else right.${name};
    })
    (attrNames right));
  getExe = package: "${package}/bin/appliance";

  mkIf = condition: content: if condition then content else { };
  mkDefault = value: value;
  mkOption = declaration: declaration;
  mkEnableOption = description: { inherit description; };
  types = { package = "package"; attrs = "attrs"; path = "path"; nullOr = type: "null or ${type}"; };
}
