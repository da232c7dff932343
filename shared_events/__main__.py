"""python -m shared_events dlq list|replay <service>: look at and replay parked messages."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys

from shared_events.parking import UnknownService, list_parked, replay_parked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared_events")
    parser.add_argument(
        "--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dlq = commands.add_parser("dlq", help="parked (dead-lettered) messages of a service")
    actions = dlq.add_subparsers(dest="action", required=True)
    show = actions.add_parser("list", help="print parked messages as JSON lines")
    show.add_argument("service", help="queue name of the service, e.g. notification_service")
    show.add_argument("--limit", type=int, default=100)
    replay = actions.add_parser("replay", help="put parked messages back on the service queue")
    replay.add_argument("service")
    replay.add_argument("--limit", type=int, default=None)
    replay.add_argument("--message-id", default=None, help="replay only this message")
    args = parser.parse_args(argv)

    try:
        if args.action == "list":
            parked = asyncio.run(list_parked(args.amqp_url, args.service, args.limit))
            for message in parked:
                print(json.dumps(dataclasses.asdict(message)))
            print(f"{len(parked)} parked message(s) in {args.service}.parked", file=sys.stderr)
        else:
            done = asyncio.run(
                replay_parked(args.amqp_url, args.service, args.limit, args.message_id)
            )
            print(
                f"moved {done.moved} message(s) to {args.service}; "
                f"{done.remaining} remain in {args.service}.parked",
                file=sys.stderr,
            )
    except UnknownService as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
