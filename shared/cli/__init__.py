"""`acr-deploy`: the release managers' and operators' command line.

Each command group lives in its own module with a `register(subparsers)` function that adds its
sub-commands and sets `func` on each; this module only dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute commands, in help order. A module that fails to import is a bug:
# let the error surface rather than hiding a command.
COMMAND_MODULES = (
    "shared.cli.history",  # history, show, apps, rejections
    "shared.cli.rules",  # rules check, rules explain
    "shared.cli.rollback",  # rollback
    "shared.cli.control",  # approve, reject, pause, resume, promote, abort, override-freeze
    "shared.cli.send_event",  # send-event
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acr-deploy",
        description="Push-to-deploy for Azure Container Apps: history, rules, rollback.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency inside the module
                raise
            continue  # command group not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `acr-deploy history | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
