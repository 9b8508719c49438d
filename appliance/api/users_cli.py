"""`appliance users`: the API's users, managed on the device itself (never over HTTP)."""

from __future__ import annotations

import argparse
import getpass
import sys

from appliance.api.users import MAX_PASSWORD_LENGTH, ROLES, UserError, UserStore, users_file
from appliance.cli_profile import add_profile_argument

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def add_users_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser(
        "users",
        help="add, list, change or remove the config API's users",
        description="Manage the config API's users in the profile's users file (api.auth.users_file, default "
        "<storage.data_dir>/api/users.json). Passwords are asked for on the terminal, or read from standard "
        "input with --password-stdin; they are kept as argon2id hashes only.",
    )
    add_profile_argument(users, positional=False)
    actions = users.add_subparsers(title="actions", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a user", description="Add user NAME with ROLE.")
    add.add_argument("name", metavar="NAME", help="the user's name")
    add.add_argument("--role", choices=ROLES, required=True, help="viewer: reads; admin: reads and writes")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(command=_add)
    listing = actions.add_parser("list", help="list the users and their roles", description="List the users.")
    listing.set_defaults(command=_list)
    passwd = actions.add_parser(
        "passwd", help="set a user's password", description="Set NAME's password; every token they hold stops working."
    )
    passwd.add_argument("name", metavar="NAME", help="the user's name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd.set_defaults(command=_passwd)
    remove = actions.add_parser(
        "remove", help="remove a user", description="Remove NAME; every token they hold stops working."
    )
    remove.add_argument("name", metavar="NAME", help="the user's name")
    remove.set_defaults(command=_remove)


def _store(args: argparse.Namespace) -> UserStore:
    from appliance.config import load_profile  # here, so that `appliance --help` stays quick

    loaded = load_profile(args.profile)
    return UserStore(users_file(loaded.profile.storage.data_dir, loaded.profile.api.auth.users_file))


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.read(MAX_PASSWORD_LENGTH + 2).rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password on; give it on standard input with --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ")
    return first


def _run(args: argparse.Namespace, action: str) -> int:
    from appliance.config import ProfileError

    try:
        store = _store(args)
        if action == "add":
            store.add(args.name, args.role, _password(args))
            print(f"added {args.name} ({args.role})")
        elif action == "passwd":
            store.set_password(args.name, _password(args))
            print(f"password of {args.name} set; their tokens are revoked")
        elif action == "remove":
            store.remove(args.name)
            print(f"removed {args.name}; their tokens are revoked")
        else:
            for user in store.users().values():
                print(f"{user.name}\t{user.role}")
    except ProfileError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    except UserError as error:
        print(f"appliance users: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _add(args: argparse.Namespace) -> int:
    return _run(args, "add")


def _list(args: argparse.Namespace) -> int:
    return _run(args, "list")


def _passwd(args: argparse.Namespace) -> int:
    return _run(args, "passwd")


def _remove(args: argparse.Namespace) -> int:
    return _run(args, "remove")
