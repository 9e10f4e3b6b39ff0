"""`python -m loadtest <scenario> [options]`: drive real gateway clients and print a report
(a table, or JSON with --json). Servers are started by the harness on 127.0.0.1 only."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from loadtest import dm, scenarios
from loadtest.harness import DEFAULT_DATABASE_URL

SCENARIOS = {
    "connect": (scenarios.connect, "N authenticated idle sockets: connect rate, RSS, heartbeats"),
    "fanout": (scenarios.fanout, "N topic subscribers: max throughput, latency at max/2, ratio"),
    "ceiling": (scenarios.ceiling, "the same fan-out against a bare aiohttp broadcast endpoint"),
    "dm": (dm.dm, "direct messages between N connected users: send -> delivered latency, loss"),
}
# Also: `python -m loadtest seed-social --help` (loadtest/social_seed.py), the feed and search
# benchmarks' world: 100k users, a power-law follow graph, 1M posts with hashtags and likes.


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["seed-social"]:  # a data generator, not a gateway scenario
        from loadtest import social_seed

        return social_seed.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="scenario", required=True)
    for name, (_, help_text) in SCENARIOS.items():
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--clients", type=int, default=10000 if name == "connect" else 1000)
        cmd.add_argument("--concurrency", type=int, default=200, help="connects in flight")
        cmd.add_argument("--encoding", choices=["json", "msgpack"], default="json")
        cmd.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
        cmd.add_argument("--json", action="store_true", help="print the report as JSON")
        cmd.add_argument("--machine", action="store_true", help=argparse.SUPPRESS)
        if name == "connect":
            cmd.add_argument("--hold", type=float, default=65, help="seconds to hold sockets")
            cmd.add_argument("--heartbeat-ms", type=int, default=30000)
        else:
            cmd.add_argument("--duration", type=float, default=10, help="seconds per phase")
            cmd.add_argument("--window", type=int, default=8, help="ticks in flight (max phase)")
            cmd.add_argument("--rate", type=float, default=0, help="ticks/s (0: max/2)")
            cmd.add_argument("--no-ceiling", action="store_true")
            cmd.add_argument(
                "--phase", choices=["both", "max", "rate"], default="both", help=argparse.SUPPRESS
            )
        if name == "dm":
            dm.add_arguments(cmd)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.clients > 50000:
        parser.error("--clients must be between 1 and 50000")
    if args.machine:  # a side run by another harness process: progress to stderr, JSON out
        scenarios.PROGRESS = sys.stderr
    report = asyncio.run(SCENARIOS[args.scenario][0](args))
    report.finish()
    if args.machine:
        print(json.dumps(report.as_dict(), default=str))
        return 0
    print(report.table())
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
