"""An operator sweeps one channel's day by hand (a backfill, or a channel that paid late):

    python -m api.sweep_command card 2026-11-30

It starts the day's ChannelSweepWorkflow (`channel-sweep-{channel}-{day}`), or joins the
one running; run again after it ended, it posts only what the bank reports since. It
waits for the result and prints it. It uses the same settings as the worker.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date

from channels.base import ChannelName
from settings import get_settings
from temporal_client import connect
from workflows.sweep_schedule import start_channel_sweep


async def sweep(channel: str, day: date) -> str:
    settings = get_settings()
    client = await connect(settings)
    handle = await start_channel_sweep(client, settings, channel, day)
    result = await handle.result()
    return result.model_dump_json(indent=2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.sweep_command", description=__doc__)
    parser.add_argument("channel", choices=[c.value for c in ChannelName])
    parser.add_argument("day", type=date.fromisoformat, help="YYYY-MM-DD")
    args = parser.parse_args(argv)
    print(asyncio.run(sweep(args.channel, args.day)))


if __name__ == "__main__":
    main()
