"""The config API's users: names, roles and argon2id password hashes in one JSON file in the
state directory (mode 0600), managed on the device with `appliance users`, never over HTTP.

Each user has a token version: every token carries it, and changing the password or removing
the user bumps it, which revokes every token issued before. A removed user's last version is kept
(`retired`), so a user added again under the same name starts above it: the old tokens stay dead."""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance.files import FileReadError, read_regular_file

Role = Literal["viewer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "admin")
MAX_USERS_FILE_BYTES = 1 << 20
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so that a wrong name takes as long
    as a wrong password; made at the first login, not at import (it costs 0.1 s)."""
    return HASHER.hash(secrets.token_hex(16))


class UserError(ValueError):
    """A request about users that cannot be done; the message says why."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str
    token_version: int = 1


class UserStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def users(self) -> dict[str, User]:
        return self._load()[0]

    def _load(self) -> tuple[dict[str, User], dict[str, int]]:
        """The users, and the last token version of each removed name."""
        if not self.path.exists():
            return {}, {}
        try:
            records = json.loads(read_regular_file(self.path, MAX_USERS_FILE_BYTES))
            users = {record["name"]: User(**record) for record in records["users"]}
            retired = {str(name): int(version) for name, version in records.get("retired", {}).items()}
        except (FileReadError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise UserError(f"{self.path}: not a users file this version can read ({error})") from None
        return users, retired

    def get(self, name: str) -> User | None:
        return self.users().get(name)

    def add(self, name: str, role: str, password: str) -> User:
        users, retired = self._load()
        if not USER_NAME.match(name):
            raise UserError(f"user name '{name}': lower-case letters, digits, '_', '.' and '-', at most 64")
        if name in users:
            raise UserError(f"user '{name}' exists already")
        version = retired.pop(name, 0) + 1
        user = User(name, _role(role), HASHER.hash(_checked_password(password)), version)
        self._save({**users, name: user}, retired)
        return user

    def set_password(self, name: str, password: str) -> None:
        """A new password; every token the user holds stops working."""
        user = self._existing(name)
        users, retired = self._load()
        self._save({**users, name: User(name, user.role, HASHER.hash(_checked_password(password)),
                                        user.token_version + 1)}, retired)  # fmt: skip

    def remove(self, name: str) -> None:
        user = self._existing(name)
        users, retired = self._load()
        self._save({n: u for n, u in users.items() if n != name}, {**retired, name: user.token_version})

    def verify(self, name: str, password: str) -> User | None:
        """The user if the password is theirs; None otherwise, taking as long either way."""
        user = self.users().get(name)
        try:
            HASHER.verify(user.password_hash if user else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def _existing(self, name: str) -> User:
        user = self.users().get(name)
        if user is None:
            raise UserError(f"no user '{name}'")
        return user

    def _save(self, users: dict[str, User], retired: dict[str, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        text = json.dumps({"users": [asdict(u) for u in users.values()], "retired": retired}, indent=2) + "\n"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "w") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            temporary.replace(self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def _role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise UserError(f"role '{role}': one of {', '.join(ROLES)}")


def _checked_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise UserError(f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    return password


def users_file(data_dir: str, configured: str | None) -> Path:
    return Path(configured) if configured else Path(data_dir) / "api" / "users.json"
