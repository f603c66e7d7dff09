"""The `humact` command line.

Each subcommand lives in its own module under `humact.commands` and exposes
`add_parser(subparsers)`, which registers an argparse parser whose default
`func(args) -> int` runs it. Modules import their heavy dependencies inside
`func`, so `humact --help` stays fast. Add a command by adding its module name
to `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from humact import __version__
from humact.errors import HumactError, one_line

#: Subcommand modules in `humact.commands`, in the order `--help` lists them.
COMMANDS: tuple[str, ...] = (
    "setup",
    "extract",
    "train",
    "test",
    "analyze",
    "classify",
    "detect",
    "gesture",
    "eval",
    "parse",
    "flow",
)




class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command, and the exit goes through `main`."""

    def error(self, message: str):
        print(f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="humact", description="Human-centric video action understanding.")
    parser.add_argument("--version", action="version", version=f"humact {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"humact.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return int(e.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (HumactError, FileNotFoundError, NotADirectoryError, PermissionError) as e:
        print(f"humact {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
