"""Hostile profiles: each class of defect found by trying to break the loader, with several cases
each. Every case runs the real command bounded in memory and time, and must end with a clear
message (located where the input allows), exit status 2, no traceback and no secret or foreign
file content in anything printed."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.hostile import Outcome, bounded_cli

SECRET = "S3cr3t-Value-4711"  # in secret files and the environment: must never be printed
LOWER_SECRET = "hush4711zz"  # a secret that is also a valid id
FIFO, FOLDER = object(), object()


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str | bytes | object]  # written in the case's folder; the profile is p.yaml
    expect: str  # a regular expression the output must contain
    command: tuple[str, ...] = ("validate", "p.yaml")
    returncode: int = 2
    located: bool = True  # the message gives FILE:LINE:COLUMN
    forbidden: tuple[str, ...] = (SECRET, LOWER_SECRET)
    env: dict[str, str] = field(default_factory=dict)


def nested_aliases(levels: int, width: int = 9) -> str:
    lines = ["device: {id: test}", f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join([*lines, f"tags: *a{levels}"]) + "\n"


def chain(count: int, extends: str, last: str = "device: {id: test}\n") -> dict[str, str | bytes | object]:
    """p.yaml, f1.yaml ... each extending the next as `extends` says ({n} is the next number)."""
    names = ["p.yaml", *(f"f{i}.yaml" for i in range(1, count))]
    files: dict[str, str | bytes | object] = {
        name: "extends: " + extends.format(n=i + 1) + "\n" for i, name in enumerate(names[:-1])
    }
    files[names[-1]] = last
    return files


def diamonds(levels: int) -> dict[str, str | bytes | object]:
    """Each level extends two files that both extend the next level: 2^levels paths."""
    files: dict[str, str | bytes | object] = {"p.yaml": "extends: [l0a.yaml, l0b.yaml]\ndevice: {id: test}\n"}
    for level in range(levels):
        below = f"[l{level + 1}a.yaml, l{level + 1}b.yaml]" if level < levels - 1 else "[]"
        files[f"l{level}a.yaml"] = files[f"l{level}b.yaml"] = f"extends: {below}\n"
    return files


def wide_tree(width: int) -> dict[str, str | bytes | object]:
    files: dict[str, str | bytes | object] = {
        "p.yaml": f"extends: [{', '.join(f'b{i}.yaml' for i in range(width))}]\ndevice: {{id: test}}\n"
    }
    for i in range(width):
        files[f"b{i}.yaml"] = f"extends: [{', '.join(f'c{i}_{j}.yaml' for j in range(width))}]\n"
        files.update({f"c{i}_{j}.yaml": "tracker: {max_lost_s: 5}\n" for j in range(width)})
    return files


def profile(body: str) -> dict[str, str | bytes | object]:
    return {"p.yaml": "device: {id: test}\n" + body, "secret.txt": SECRET + "\n", "lower.txt": LOWER_SECRET + "\n"}


def camera(fields: str) -> dict[str, str | bytes | object]:
    return profile(f"cameras:\n  - {{id: cam, source: /dev/video0, {fields}}}\n")


CALIBRATION = """
cameras:
  - id: cam
    source: /dev/video0
    distance:
      method: calibrated
      calibration:
        - {image: [102, 540], floor: [0, 0]}
        - {image: [690, 552], floor: [600, 0]}
        - {image: [610, 215], floor: [600, 1200]}
        - {image: [180, 210], floor: [0, 1200]}
        - {image: [400, 300], floor: %s}
"""

CLASSES: dict[str, list[Case]] = {
    "alias-expansion": [
        Case("nine-nested-9-way-aliases", {"p.yaml": nested_aliases(9)}, r"more than 64 aliases"),
        Case("six-levels-under-the-alias-count", {"p.yaml": nested_aliases(6)}, r"aliases expand to more than"),
        Case(
            "many-flat-aliases",
            {"p.yaml": "device: {id: test}\nx: &x [1]\ntags: [" + ", ".join(["*x"] * 70) + "]\n"},
            r"more than 64 aliases",
        ),
        Case(
            "bomb-in-an-extended-profile",
            {"p.yaml": "extends: base.yaml\n", "base.yaml": nested_aliases(7)},
            r"base\.yaml:\d+:\d+: aliases expand to more than",
        ),
        Case(
            "half-a-million-values-without-aliases",
            {"p.yaml": "device: {id: t}\ntags: [" + ",".join(["1"] * 500_000) + "]\n"},
            r"p\.yaml:2:\d+: more than 50000 values",
        ),
        Case(
            "wide-alias-of-a-wide-list",
            {"p.yaml": "device: {id: t}\nx: &x [" + ",".join(["1"] * 5000) + "]\ny: [" + ",".join(["*x"] * 50) + "]\n"},
            r"aliases expand to more than",
        ),
    ],
    "extends-fan-out": [
        Case("25-files-each-listing-the-next-twice", chain(25, "[f{n}.yaml, f{n}.yaml]"), r"listed more than once"),
        Case("diamonds-20-levels", diamonds(20), r"more than 8 levels deep"),
        Case("chain-of-12", chain(12, "f{n}.yaml"), r"more than 8 levels deep"),
        Case("eight-by-eight-files", wide_tree(8), r"more than 32 extended profiles"),
        Case("extends-itself", {"p.yaml": "extends: p.yaml\ndevice: {id: t}\n"}, r"cyclic extends"),
    ],
    "non-regular-files": [
        Case(
            "profile-is-dev-zero",
            {},
            r"/dev/zero: cannot read the profile: it is a character device",
            command=("validate", "/dev/zero"),
            located=False,
        ),
        Case("profile-is-a-fifo", {"p.yaml": FIFO}, r"p\.yaml: cannot read the profile: it is a FIFO", located=False),
        Case(
            "profile-is-a-folder",
            {"p.yaml": FOLDER},
            r"p\.yaml: cannot read the profile: it is a folder",
            located=False,
        ),
        Case(
            "profile-over-a-mebibyte",
            {"p.yaml": "device: {id: t}\n" + "#" * 2_000_000 + "\n"},
            r"larger than 1048576 bytes",
            located=False,
        ),
        Case("extends-a-fifo", {"p.yaml": "extends: base.yaml\n", "base.yaml": FIFO}, r"'base\.yaml' is a FIFO"),
        Case("extends-a-folder", {"p.yaml": "extends: base.yaml\n", "base.yaml": FOLDER}, r"'base\.yaml' is a folder"),
        Case("secret-dev-zero", profile("mqtt: {password: '${file:/dev/zero}'}\n"), r"is a character device"),
        Case("secret-fifo", {**profile("mqtt: {password: '${file:s.fifo}'}\n"), "s.fifo": FIFO}, r"is a FIFO"),
        Case("password-file-fifo", {**profile("mqtt: {password_file: s.fifo}\n"), "s.fifo": FIFO}, r"is a FIFO"),
        Case("secret-folder", profile("mqtt: {password: '${file:.}'}\n"), r"is a folder"),
        Case(
            "extends-a-link-to-itself",
            {"p.yaml": "extends: base.yaml\n", "base.yaml": Link("base.yaml")},
            r"'base\.yaml' is unreadable \(a loop of symbolic links\)",
        ),
        Case(
            "extends-two-links-to-each-other",
            {"p.yaml": "extends: a.yaml\n", "a.yaml": Link("b.yaml"), "b.yaml": Link("a.yaml")},
            r"'a\.yaml' is unreadable \(a loop of symbolic links\)",
        ),
        Case(
            "secret-file-a-link-to-itself",
            {**profile("mqtt: {password_file: s.txt}\n"), "s.txt": Link("s.txt")},
            r"it is unreadable \(too many levels of symbolic links\)",
        ),
        Case(
            "secret-over-64-kib",
            {**profile("mqtt: {password_file: big.txt}\n"), "big.txt": "x" * 100_000},
            r"larger than 65536 bytes",
        ),
    ],
    "foreign-files-and-secrets-echoed": [
        Case(
            "extends-an-absolute-system-file",
            profile("extends: /etc/passwd\n"),
            r"'/etc/passwd' is outside",
            forbidden=(SECRET, "root:"),
        ),
        Case(
            "extends-a-parent-folder",
            {"p.yaml": "extends: ../outside.yaml\n", "../outside.yaml": f"{SECRET}: 1\n"},
            r"is outside",
        ),
        Case(
            "extends-a-link-out-of-the-tree",
            {
                "p.yaml": "extends: base.yaml\n",
                "base.yaml": Link("../elsewhere.yaml"),
                "../elsewhere.yaml": f"{SECRET}: 1\n",
            },
            r"'base\.yaml' is outside",
        ),
        Case("extends-a-text-file", profile("extends: secret.txt\n"), r"'secret\.txt' is not a profile"),
        Case("file-reference-in-a-type-error", profile("mqtt: {port: '${file:secret.txt}'}\n"), r"expected integer"),
        Case(
            "multi-line-file-in-a-type-error",
            {**profile("mqtt: {port: '${file:multi.txt}'}\n"), "multi.txt": f"root:x:0\n{SECRET}:1\n"},
            r"expected integer",
            forbidden=(SECRET, "root:x"),
        ),
        Case(
            "file-reference-in-a-pattern-error",
            profile("cameras: [{id: '${file:secret.txt}', source: 0}]\n"),
            r"cameras\[0\]\.id: \*+ does not match",
        ),
        Case(
            "file-reference-in-an-unknown-camera",
            profile("cameras: [{id: a, source: 0}]\nareas: [{id: x, cameras: ['${file:lower.txt}']}]\n"),
            r"unknown camera \*+ \(cameras: a\)",
        ),
        Case(
            "numeric-password",
            profile("mqtt: {password: 98765432}\n"),
            r"mqtt\.password: expected string",
            forbidden=("98765432",),
        ),
        Case(
            "env-reference-in-a-type-error",
            profile("mqtt: {port: '${env:HOSTILE_SECRET}'}\n"),
            r"expected integer",
            env={"HOSTILE_SECRET": SECRET},
        ),
        Case(
            "env-reference-in-an-enum",
            profile("detector: {backend: '${env:HOSTILE_SECRET}'}\n"),
            r"detector\.backend",
            env={"HOSTILE_SECRET": LOWER_SECRET},
        ),
        Case(
            "file-reference-as-a-valid-device-id",
            {"p.yaml": "device: {id: '${file:lower.txt}'}\n", "lower.txt": LOWER_SECRET},
            r"valid \(device '\*+'",
            returncode=0,
            located=False,
        ),
        Case(
            "show-a-password-in-a-camera-url",
            profile(f"cameras: [{{id: a, source: 'rtsp://admin:{SECRET}@cam/s'}}]\n"),
            r"rtsp://admin:\*+@cam/s",
            command=("show", "p.yaml"),
            returncode=0,
            located=False,
        ),
        Case(
            "show-an-env-value-in-a-camera-url",
            profile("cameras: [{id: a, source: 'rtsp://admin:${env:HOSTILE_SECRET}@cam/s'}]\n"),
            r"rtsp://admin:\*+@cam/s",
            command=("show", "p.yaml"),
            returncode=0,
            located=False,
            env={"HOSTILE_SECRET": SECRET},
        ),
        Case(
            "show-a-token-in-a-camera-url",
            profile(f"cameras: [{{id: a, source: 'http://cam/s?token={SECRET}'}}]\n"),
            r"token=\*+",
            command=("show", "p.yaml", "-f", "json"),
            returncode=0,
            located=False,
        ),
    ],
    "short-secrets-masked-as-text": [
        Case(
            "one-letter-password-in-show",
            profile("mqtt: {password: e}\n"),
            r"password: '?\*+'?\n(.|\n)*enabled: true",
            command=("show", "p.yaml"),
            returncode=0,
            located=False,
            forbidden=("********abl",),
        ),
        Case(
            "digit-password-in-show",
            profile("mqtt: {password: '1'}\n"),
            r"port: 1883",
            command=("show", "p.yaml"),
            returncode=0,
            located=False,
        ),
        Case(
            "word-password-in-a-url",
            profile("cameras: [{id: a, source: 'rtsp://a:camera@cam/s'}]\n"),
            r"id: a(.|\n)*rtsp://a:\*+@cam/s",
            command=("show", "p.yaml"),
            returncode=0,
            located=False,
        ),
    ],
    "non-finite-numbers": [
        Case("nan-threshold", profile("distancing: {threshold_cm: .nan}\n"), r"threshold_cm: must be a finite number"),
        Case("infinite-threshold", profile("distancing: {threshold_cm: .inf}\n"), r"must be a finite number"),
        Case("negative-infinity", profile("distancing: {hysteresis_cm: -.inf}\n"), r"must be a finite number"),
        Case("overflowing-float", profile("distancing: {threshold_cm: 1e999}\n"), r"must be a finite number"),
        Case("nan-calibration-point", profile(CALIBRATION % "[.nan, 600]"), r"calibration\[4\]\.floor\[0\]: must be"),
        Case("infinite-fps-cap", camera("fps_cap: .inf"), r"fps_cap: must be a finite number"),
        Case(
            "nan-in-show-json",
            profile("distancing: {threshold_cm: .NaN}\n"),
            r"must be a finite number",
            command=("show", "p.yaml", "-f", "json"),
            forbidden=(": NaN",),
        ),
    ],
    "ids-and-control-characters": [
        Case(
            "camera-id-ending-in-a-newline",
            profile('cameras: [{id: "cam\\n", source: 0}]\n'),
            r"cameras\[0\]\.id: contains a control or bidirectional character \(U\+000A\)",
        ),
        Case(
            "device-id-ending-in-a-newline", {"p.yaml": 'device: {id: "dev\\n"}\n'}, r"device\.id: contains a control"
        ),
        Case("area-id-with-a-carriage-return", profile('areas: [{id: "a\\r", cameras: [c]}]\n'), r"U\+000D"),
        Case("camera-name-with-a-tab", camera('name: "a\\tb"'), r"name: contains a control .*\(U\+0009\)"),
        Case("camera-name-with-a-right-to-left-override", camera('name: "door\\u202etxt.exe"'), r"\(U\+202E\)"),
        Case("key-with-a-bell", profile('"tr\\aacker": {max_lost_s: 1}\n'), r"key contains a control or bidi\w+"),
        Case("next-line-character-in-an-id", profile('cameras: [{id: "cam\\N", source: 0}]\n'), r"U\+0085"),
        Case("newline-in-a-source-url", camera('name: x, tags: ["a\\nb"]'), r"tags\[0\]: contains a control"),
    ],
    "values-beyond-bounds": [
        Case(
            "impossible-ipv4-listen",
            profile("metrics: {listen: '999.999.999.999:9110'}\n"),
            r"metrics\.listen: '999\.999\.999\.999' is not a valid IP address",
        ),
        Case("impossible-ipv6-listen", profile("metrics: {listen: '[1::2::3]:9110'}\n"), r"not a valid IP address"),
        Case("bad-host-name-listen", profile("api: {listen: '-bad-.example:80'}\n"), r"not a valid host name"),
        Case("port-out-of-range", profile("metrics: {listen: '0.0.0.0:99999'}\n"), r"port 99999 is out of range"),
        Case("huge-thread-count", profile("detector: {threads: 100000}\n"), r"threads: 100000 is greater than"),
        Case("huge-failure-count", profile("runtime: {max_failures: 1000000000}\n"), r"is greater than the maximum"),
        Case("huge-input-size", profile("detector: {input_size: [100000, 100000]}\n"), r"input_size\[0\]"),
        Case("huge-camera-name", camera("name: " + "n" * 5000), r"is 5000 characters long; at most 4096"),
        Case(
            "65-cameras",
            profile("cameras:\n" + "".join(f"  - {{id: c{i}, source: {i % 60}}}\n" for i in range(65))),
            r"cameras: expected at most 64 items",
        ),
        Case(
            "calibration-point-off-by-metres",
            profile(CALIBRATION % "[3000, 900]"),
            r"calibration\[4\]: this point does not fit the others",
        ),
        Case("huge-stop-timeout", profile("runtime: {stop_timeout_s: 1e9}\n"), r"is greater than the maximum"),
    ],
    "inputs-that-raised-tracebacks": [
        Case("nul-byte", {"p.yaml": b"device: {id: te\x00st}\n"}, r"p\.yaml:1:16: character U\+0000 is not allowed"),
        Case(
            "merge-key",
            {"p.yaml": "device: {id: t}\nb: &b {max_lost_s: 1}\ntracker:\n  <<: *b\n"},
            r"p\.yaml:4:3: merge keys",
        ),
        Case(
            "500-nested-brackets",
            {"p.yaml": "device: {id: t}\ntags: " + "[" * 500 + "]" * 500 + "\n"},
            r"nested more than 32 levels",
        ),
        Case(
            "500-nested-mappings",
            {"p.yaml": "device: {id: t}\nx: " + "{a: " * 500 + "1" + "}" * 500 + "\n"},
            r"nested more than 32 levels",
        ),
        Case(
            "5000-digit-integer",
            profile("distancing: {threshold_cm: " + "9" * 5000 + "}\n"),
            r"a number of 5000 characters is too long",
        ),
        Case("5000-digit-float", profile("distancing: {threshold_cm: 1." + "5" * 5000 + "}\n"), r"too long"),
        Case("not-utf-8", {"p.yaml": b"device: {id: t}\nname: \xff\xfe\n"}, r"p\.yaml:2:1: not UTF-8"),
        Case("complex-key", profile("? [a, b]\n: 1\n"), r"unknown key"),
        Case("null-key", profile("~: 1\n"), r"unknown key"),
        Case("nul-in-an-extends-name", {"p.yaml": 'extends: "a\\0.yaml"\n'}, r"may not hold control characters"),
        Case(
            "nul-in-a-secret-file-name",
            profile('mqtt: {password: "${file:a\\0b}"}\n'),
            r"'.*a\\x00b': it has a NUL character in its name",
        ),
        Case("two-documents", profile("---\ndevice: {id: u}\n"), r"expected a single document"),
        Case(
            "python-object-tag",
            {"p.yaml": "device: {id: t}\nx: !!python/object/apply:os.system ['touch pwned']\n"},
            r"unknown key 'x'",
            forbidden=("pwned",),
        ),
    ],
}

CASES = [(group, case) for group, cases in CLASSES.items() for case in cases]


def _write(folder: Path, case: Case) -> None:
    folder.mkdir(parents=True)
    for name, content in case.files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is FIFO:
            os.mkfifo(target)
        elif content is FOLDER:
            target.mkdir()
        elif isinstance(content, Link):
            target.symlink_to(content.target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(str(content), encoding="utf-8")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    """Every case, run four at a time (each is one bounded process)."""
    root = tmp_path_factory.mktemp("hostile")

    def run(index: int, case: Case) -> Outcome:
        folder = root / f"case{index}" / "profiles"
        _write(folder, case)
        return bounded_cli(*case.command, cwd=folder, env=case.env)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {case.name: pool.submit(run, i, case) for i, (_, case) in enumerate(CASES)}
        yield {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize(("group", "case"), CASES, ids=[f"{group}/{case.name}" for group, case in CASES])
def test_hostile_profile(group: str, case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.name]
    assert outcome.returncode is not None, f"still running after {outcome.seconds:.0f} s"
    assert "Traceback" not in outcome.output and "Error:" not in outcome.stderr, outcome.output
    assert outcome.returncode == case.returncode, outcome.output
    assert re.search(case.expect, outcome.output), outcome.output
    if case.located:
        assert re.search(r"\.yaml:\d+:\d+[ :]", outcome.stderr), outcome.stderr
    for forbidden in case.forbidden:
        assert forbidden not in outcome.output, f"{forbidden!r} printed"


def test_every_class_has_several_cases() -> None:
    assert all(len(cases) >= 3 for cases in CLASSES.values())
    assert len({case.name for _, case in CASES}) == len(CASES)
