"""`acr-deploy rollback APP [--to REVISION] [--resource-group RG]`: move traffic back.

With a function app URL (`--url`/ACR_DEPLOY_FUNCTION_URL, key `--code`/ACR_DEPLOY_FUNCTION_KEY,
as `history` takes them) it asks `POST /api/apps/{app}/rollback`; without one, it records the
rollback itself through the rollout worker's `request_rollback` from ./local.settings.json (which
needs storage and ARM access). Either way a kind=rollback deployment is recorded and enqueued (the
same machinery as a push: take the app, check the target revision, shift, verify, record); the
queue trigger does the work; `--wait` follows the history until it ends. `--json` prints the
whole deployment record, `--csv` one row (ROLLBACK_COLUMNS) with a header; either keeps stdout free
of the progress lines.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from typing import TYPE_CHECKING, TextIO

from shared.cli._api import URL_ENV, CommandFailed, add_api_flags, call, source
from shared.cli._output import add_output_flags, write_csv
from shared.cli._text import printable
from shared.cli.history import TERMINAL
from shared.errors import AcrDeployError

if TYPE_CHECKING:
    from typing import Callable

    from shared.domain.model import Deployment

EXIT_CODES = {"NotFoundError": 3, "ConflictError": 4, "InvalidRequestError": 2}
ROLLBACK_COLUMNS = ("id", "app", "revision", "phase", "reason")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rollback", help="move an app's traffic back to its previous (or a named) healthy revision",
        description="Records a rollback deployment and queues it; the rollout worker carries it out.",
    )
    parser.add_argument("app", help="Container App name")
    parser.add_argument("--to", dest="to_revision", metavar="REVISION",
                        help="revision name (or its suffix); default: the previous healthy revision")
    parser.add_argument("--resource-group", "-g", help="resource group (when the name is ambiguous)")
    parser.add_argument("--wait", action="store_true", help="follow the rollback until it ends")
    parser.add_argument("--timeout", type=float, default=300.0, help="--wait limit in seconds (default 300)")
    parser.add_argument("--reason", help="why (recorded with who asked, e.g. 'checkout errors after 1.5.0')")
    add_api_flags(parser)
    add_output_flags(parser, json_help="print the deployment as JSON",
                     csv_help="print id, app, revision, phase, reason as CSV with a header row")
    parser.set_defaults(func=run)


def _who(reason: str | None = None) -> str:
    try:
        who = f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        who = "cli"
    return f"{who}: {reason.strip()}"[:128] if reason and reason.strip() else who


def run(args: argparse.Namespace) -> int:
    if getattr(args, "url", None) or os.environ.get(URL_ENV):
        try:
            return _run_over_http(args)
        except CommandFailed as failed:
            return failed.code
    return _run_locally(args)


def _run_over_http(args: argparse.Namespace) -> int:
    src = source(args)
    request = {"requested_by": _who(args.reason), "to_revision": args.to_revision,
               "resource_group": args.resource_group}
    d = call(args, "POST", f"apps/{args.app}/rollback",
             body={k: v for k, v in request.items() if v}, src=src)
    quiet = args.json or args.csv
    if not quiet:
        print(printable(f"rollback {d['id']} queued: {d['app']} -> {d['revision']}"))
    if args.wait:
        deadline = time.monotonic() + max(args.timeout, 0.0)
        while d["phase"] not in TERMINAL and time.monotonic() < deadline:
            time.sleep(1.0)
            d = call(args, "GET", f"deployments/{d['id']}", {"app": d["app"]}, src=src)
        if not quiet:
            print(printable(f"{d['phase']}: {d['reason']}" if d["phase"] in TERMINAL
                            else "still running (see acr-deploy show)"))
    if args.json:
        print(json.dumps(d, indent=2))
    elif args.csv:
        write_csv([d], ROLLBACK_COLUMNS)
    return 1 if args.wait and d["phase"] in TERMINAL and d["phase"] != "succeeded" else 0


def run_locally(command: str, request: "Callable[[], Deployment]") -> "Deployment | int":
    """A request made with the local store and ARM (no function URL): the deployment, or the exit
    code after saying why on stderr."""
    try:
        return request()
    except AcrDeployError as exc:
        print(f"acr-deploy {command}: {printable(str(exc))}", file=sys.stderr)
        return EXIT_CODES.get(type(exc).__name__, 1)
    except ValueError as exc:  # broken settings
        print(f"acr-deploy {command}: {exc}", file=sys.stderr)
        return 2


def _run_locally(args: argparse.Namespace) -> int:
    from shared.bootstrap import Container
    from shared.cli._settings import load_settings
    from shared.domain.model import deployment_to_dict

    try:
        container = Container(load_settings())
    except ValueError as exc:  # broken settings
        print(f"acr-deploy rollback: {exc}", file=sys.stderr)
        return 2
    d = run_locally("rollback", lambda: container.rollout.request_rollback(
        args.app, to_revision=args.to_revision, resource_group=args.resource_group,
        requested_by=_who(args.reason)))
    if isinstance(d, int):
        return d
    quiet = args.json or args.csv  # scripts get only the record on stdout
    if not quiet:
        print(printable(f"rollback {d.id} queued: {d.target.app} -> {d.revision}"))
    if args.wait:
        deadline = time.monotonic() + max(args.timeout, 0.0)
        while time.monotonic() < deadline:
            current = container.store.get_deployment(d.id, app=d.target.app) or d
            if current.phase.terminal:
                d = current
                break
            time.sleep(1.0)
        if not quiet:
            print(printable(f"{d.phase}: {d.reason}") if d.phase.terminal else "still running (see acr-deploy show)")
    if args.json:
        print(json.dumps(deployment_to_dict(d), indent=2))
    elif args.csv:
        write_rollback_csv(d)
    if args.wait and d.phase.terminal and d.phase.value != "succeeded":
        return 1
    return 0


def write_rollback_csv(d: "Deployment", stream: TextIO | None = None) -> None:
    """The rollback as one CSV row of ROLLBACK_COLUMNS: the very values --json prints for those keys."""
    from shared.domain.model import deployment_to_dict

    write_csv([deployment_to_dict(d)], ROLLBACK_COLUMNS, stream)
