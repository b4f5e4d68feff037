"""`vega-ros`: the command-line entry point (demo, bringup, build-engine, libero-eval)."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vega-ros", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the main job: simulated camera -> perception over real DDS, summary in demo_out/")
    demo.add_argument("--out", default="demo_out", help="output directory")
    demo.add_argument("--duration", type=float, default=5.0, help="seconds to stream")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from vega_ros.transport_demo import run_transport_demo

        return run_transport_demo(args.out, args.duration)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
