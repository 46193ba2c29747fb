"""``aiguard`` command line: the demo server, database, consent and report tools."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from aiguard.errors import AIGuardError
from aiguard.policy.loading import load_policy


def _demo(args: argparse.Namespace) -> int:
    from aiguard.demo import run_demo

    run_demo(host=args.host, port=args.port, policy_path=args.policy_path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from aiguard import cli_consent, cli_proxy, cli_reports

    parser = argparse.ArgumentParser(prog="aiguard", description=__doc__)
    parser.add_argument(
        "--policy",
        dest="policy_path",
        metavar="PATH",
        help="policy TOML file (default: $AIGUARD_POLICY, else built-in defaults + AIGUARD_* env)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="serve the demo chat page and scripted bot on loopback")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(func=_demo, needs_policy=False)
    cli_consent.register(sub)
    cli_reports.register(sub)
    cli_proxy.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if getattr(args, "needs_policy", True):
            args.policy = load_policy(args.policy_path)
        code: int = args.func(args)
    except AIGuardError as exc:
        print(f"aiguard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
