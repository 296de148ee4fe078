"""`acr-deploy approve|reject|pause|resume|promote|abort|override-freeze ID --reason TEXT`.

With a function app URL (`--url`/ACR_DEPLOY_FUNCTION_URL, key `--code`/ACR_DEPLOY_FUNCTION_KEY, as
`history` takes them) it asks `POST /api/deployments/{id}/{action}` (the API records the signed-in
name, or `--by` marked "(function key)"); without one, it records the request through the rollout
worker from ./local.settings.json, as `rollback` does. Either way the request is recorded with who
and why and the rollout worker carries it out at its next step; a request the deployment cannot
take now (expired, superseded, finished) changes nothing and exits 4.
"""

from __future__ import annotations

import argparse
import json
import os

from shared.cli._api import URL_ENV, CommandFailed, add_api_flags, call
from shared.cli._output import add_output_flags, write_csv
from shared.cli._text import printable
from shared.cli.rollback import _who, run_locally
from shared.domain.approvals import ControlAction

COMMANDS = {
    "approve": (ControlAction.APPROVE, "approve a deployment waiting for approval (it then shifts traffic)"),
    "reject": (ControlAction.REJECT, "reject a deployment waiting for approval (it never gets traffic)"),
    "pause": (ControlAction.PAUSE, "pause a rollout: weights held until resumed or its deadline"),
    "resume": (ControlAction.RESUME, "resume a paused rollout"),
    "promote": (ControlAction.PROMOTE, "skip the remaining canary steps: all traffic now"),
    "abort": (ControlAction.ABORT, "abort a rollout: traffic back to what served before"),
    "override-freeze": (ControlAction.OVERRIDE_FREEZE, "emergency: let one deployment through a freeze window"),
}
COLUMNS = ("id", "app", "phase", "reason")


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, (action, help_text) in COMMANDS.items():
        parser = subparsers.add_parser(name, help=help_text, description=help_text + ". Recorded with who and why.")
        parser.add_argument("id", metavar="ID", help="deployment id (acr-deploy history shows them)")
        parser.add_argument("--reason", "-m", required=True, help="why (recorded in the history)")
        parser.add_argument("--app", help="the deployment's app (a faster lookup)")
        parser.add_argument("--by", help="who you are, when the API cannot tell (default: cli:<login>)")
        add_api_flags(parser)
        add_output_flags(parser, json_help="print the deployment as recorded", csv_help="print id, app, phase, reason")
        parser.set_defaults(func=run, control=action)


def run(args: argparse.Namespace) -> int:
    by = args.by or _who()
    if getattr(args, "url", None) or os.environ.get(URL_ENV):
        body = {"reason": args.reason, "by": by, **({"app": args.app} if args.app else {})}
        try:
            record = call(args, "POST", f"deployments/{args.id}/{args.control.value}", body=body)
        except CommandFailed as failed:
            return failed.code
    else:
        record = _run_locally(args, by)
        if isinstance(record, int):
            return record
    if args.json:
        print(json.dumps(record, indent=2))
    elif args.csv:
        write_csv([record], COLUMNS)
    else:
        print(printable(f"{args.control} recorded for {record['id']} ({record['app']}, {record['phase']}); "
                        "the rollout carries it out at its next step"))
    return 0


def _run_locally(args: argparse.Namespace, by: str) -> dict | int:
    from shared.bootstrap import Container
    from shared.cli._settings import load_settings
    from shared.domain.model import deployment_to_dict

    d = run_locally(args.control, lambda: Container(load_settings()).rollout.request_control(
        args.id, args.control, by, args.reason, app=args.app))
    return d if isinstance(d, int) else deployment_to_dict(d)
