"""`acr-deploy approve|reject|pause|resume|promote|abort|override-freeze ID --reason TEXT`.

Through the function app's API when `--url` / ACR_DEPLOY_FUNCTION_URL is set (key in
ACR_DEPLOY_FUNCTION_KEY; the API records the signed-in name, or `--by` with "(function key)"), else
straight into the store and queue named by ./local.settings.json, as `rollback` does. Either way the
request is recorded with who and why and the rollout worker carries it out at its next step; a
request the deployment cannot take now (expired, superseded, finished) changes nothing and exits 4.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from shared.cli._output import add_output_flags, write_csv
from shared.cli.rollback import EXIT_CODES, _who
from shared.domain.approvals import ControlAction
from shared.errors import AcrDeployError

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
STATUS_EXIT = {400: 2, 404: 3, 409: 4}


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, (action, help_text) in COMMANDS.items():
        parser = subparsers.add_parser(name, help=help_text, description=help_text + ". Recorded with who and why.")
        parser.add_argument("id", metavar="ID", help="deployment id (acr-deploy history shows them)")
        parser.add_argument("--reason", "-m", required=True, help="why (recorded in the history)")
        parser.add_argument("--app", help="the deployment's app (a faster lookup)")
        parser.add_argument("--by", help="who you are, when the API cannot tell (default: cli:<login>)")
        parser.add_argument("--url", "--api", dest="url", metavar="URL",
                            help="function app URL (default: ACR_DEPLOY_FUNCTION_URL; none: the store directly)")
        add_output_flags(parser, json_help="print the deployment as recorded", csv_help="print id, app, phase, reason")
        parser.set_defaults(func=run, control=action)


def run(args: argparse.Namespace) -> int:
    by = args.by or _who()
    url = args.url or os.environ.get("ACR_DEPLOY_FUNCTION_URL")
    if url:
        status, body = _post(url, args.id, args.control, {"reason": args.reason, "by": by,
                                                         **({"app": args.app} if args.app else {})})
        if status != 202:
            print(f"acr-deploy {args.control}: {body.get('error') or f'HTTP {status}'}", file=sys.stderr)
            return STATUS_EXIT.get(status, 1)
        record = body
    else:
        from shared.bootstrap import Container
        from shared.cli._settings import load_settings
        from shared.domain.model import deployment_to_dict

        try:
            d = Container(load_settings()).rollout.request_control(args.id, args.control, by, args.reason,
                                                                   app=args.app)
        except AcrDeployError as exc:
            print(f"acr-deploy {args.control}: {exc}", file=sys.stderr)
            return EXIT_CODES.get(type(exc).__name__, 1)
        except ValueError as exc:  # broken settings
            print(f"acr-deploy {args.control}: {exc}", file=sys.stderr)
            return 2
        record = deployment_to_dict(d)
    if args.json:
        print(json.dumps(record, indent=2))
    elif args.csv:
        write_csv([record], COLUMNS)
    else:
        print(f"{args.control} recorded for {record['id']} ({record['app']}, {record['phase']}); "
              "the rollout carries it out at its next step")
    return 0


def _post(url: str, deployment_id: str, action: ControlAction, body: dict[str, Any]) -> tuple[int, dict]:
    import httpx

    base = url.rstrip("/")
    base = base if base.endswith("/api") else f"{base}/api"
    headers = {"Accept": "application/json"}
    key = os.environ.get("ACR_DEPLOY_FUNCTION_KEY")
    if key:
        headers["x-functions-key"] = key
    try:
        response = httpx.post(f"{base}/deployments/{deployment_id}/{action.value}", json=body, headers=headers,
                              timeout=30)
    except httpx.HTTPError as exc:
        return 599, {"error": f"cannot reach {base}: {type(exc).__name__}"}
    try:
        answer = response.json()
    except ValueError:
        answer = {"error": f"HTTP {response.status_code} (not JSON)"}
    return response.status_code, answer if isinstance(answer, dict) else {"error": str(answer)[:200]}
