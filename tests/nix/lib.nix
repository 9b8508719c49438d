# The few nixpkgs `lib` functions nix/settings.nix uses, written here so that the test
# evaluates it with Debian's nix and no nixpkgs. Same meaning as nixpkgs' lib.
let
  inherit (builtins) elem foldl' fromJSON length stringLength substring elemAt match;
in
rec {
  last = list: elemAt list (length list - 1);
  toInt = string:
    if match "[0-9]+" string == null then throw "toInt: '${string}' is not a number" else fromJSON string;
  hasPrefix = prefix: string: substring 0 (stringLength prefix) string == prefix;
  removePrefix = prefix: string:
    if hasPrefix prefix string then substring (stringLength prefix) (stringLength string) string else string;
  unique = foldl' (kept: item: if elem item kept then kept else kept ++ [ item ]) [ ];
  optionals = condition: list: if condition then list else [ ];
}
