"""`appliance notify test CHANNEL`: send a test message through one channel now, not through
its queue, and say plainly whether it arrived."""

from __future__ import annotations

import argparse
import sys
import time

from appliance.cli_profile import add_profile_argument

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_notify_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notify = commands.add_parser("notify", help="notification channels: test",
                                 description="The notification channels of the profile (notifications).")  # fmt: skip
    add_profile_argument(notify, positional=False)
    actions = notify.add_subparsers(title="actions", metavar="ACTION", required=True)
    test = actions.add_parser(
        "test", help="send a test message through a channel now",
        description="Send a test message through one channel, now (not through its queue), and report the outcome.",
    )  # fmt: skip
    test.add_argument("channel", help="the channel's id")
    test.set_defaults(command=_test)


def _test(args: argparse.Namespace) -> int:
    from appliance.config import ProfileError, load_profile
    from appliance.config.model import ChannelConfig
    from appliance.runtime.outputs.channels.base import DeliveryFailed
    from appliance.runtime.outputs.notifications.compose import test_message
    from appliance.runtime.outputs.notifications.output import make_transport

    try:
        profile = load_profile(args.profile).profile
    except ProfileError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    notifications = profile.notifications
    every: tuple[ChannelConfig, ...] = (*notifications.email, *notifications.slack, *notifications.webhooks)
    channels = {c.id: c for c in every}
    if args.channel not in channels:
        print(f"no channel '{args.channel}' (channels: {', '.join(channels) or 'none'})", file=sys.stderr)
        return EXIT_BAD_INPUT
    transport = make_transport(channels[args.channel], profile.device.id)
    try:
        transport.send(test_message(profile, args.channel, time.time()))
    except DeliveryFailed as failure:
        print(f"{transport.name}: not delivered: {failure}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{transport.name}: delivered")
    return EXIT_OK
