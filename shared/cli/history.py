"""`acr-deploy history [APP]`, `acr-deploy show ID`, `acr-deploy apps`: the history, for people.

Data comes from the Table store directly (settings from the environment over ./local.settings.json)
or, with `--url URL` / ACR_DEPLOY_FUNCTION_URL, from the function app's HTTP API (key in
ACR_DEPLOY_FUNCTION_KEY; client-side variables shared with `send-event`, not app settings). Both go through the same API shapes, so the output is
identical. Readable tables by default; `--json` and `--csv` for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from shared.cli._output import add_output_flags, write_csv

EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_FAILED = 2, 3, 1


class CommandFailed(Exception):
    """Already reported on stderr; carries the exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _exit_codes(command):
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CommandFailed as failed:
            return failed.code

    run.__name__ = command.__name__
    return run

DEPLOYMENT_COLUMNS = ("id", "created_at", "app", "environment", "tag", "phase", "reason", "pushed_by", "image")
DEPLOYMENT_TABLE = ("created_at", "app", "environment", "tag", "phase", "reason", "id")  # fits a terminal
APP_COLUMNS = ("app", "resource_group", "environment", "live_tag", "live_since", "live_image", "last_phase")
EVENT_COLUMNS = ("seq", "at", "phase", "message")
PHASE_STYLE = {"succeeded": "green", "failed": "red", "rolled_back": "yellow", "skipped": "dim",
               "superseded": "dim"}


def register(subparsers: Any) -> None:
    history = subparsers.add_parser("history", help="deployments, newest first (one app's or all)")
    history.add_argument("app", nargs="?", help="Container App name")
    history.add_argument("--environment")
    history.add_argument("--status", help="a phase (succeeded, failed, ...) or 'active'")
    history.add_argument("--repository")
    history.add_argument("--since", help="ISO-8601 time or relative: 30m, 24h, 7d")
    history.add_argument("--until", help="ISO-8601 time or relative")
    history.add_argument("--limit", type=int, default=20, help="rows (1-200, default 20)")
    _common(history)
    history.set_defaults(func=cmd_history)

    show = subparsers.add_parser("show", help="one deployment's full story")
    show.add_argument("id")
    _common(show)
    show.set_defaults(func=cmd_show)

    apps = subparsers.add_parser("apps", help="what runs where, and since when")
    apps.add_argument("--environment")
    _common(apps)
    apps.set_defaults(func=cmd_apps)


def _common(parser: argparse.ArgumentParser) -> None:
    add_output_flags(parser, json_help="JSON, as the HTTP API returns it")
    parser.add_argument("--url", "--api", dest="url", metavar="URL",
                        help="read through the function app's HTTP API (e.g. https://<app>.azurewebsites.net); "
                             "default: $ACR_DEPLOY_FUNCTION_URL, else the Table store from local settings")


# ---------------------------------------------------------------------- data sources


class ApiSource:
    """The function app's HTTP API (function key in ACR_DEPLOY_FUNCTION_KEY)."""

    def __init__(self, base_url: str, key: str | None) -> None:
        base = base_url.rstrip("/")
        # Accept the function app's URL (as send-event does) or its /api prefix.
        self.base_url = base if base.endswith("/api") else f"{base}/api"
        self.key = key

    def get(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        import httpx

        headers = {"Accept": "application/json"}
        if self.key:
            headers["x-functions-key"] = self.key
        try:
            response = httpx.get(f"{self.base_url}/{path}", params=params, headers=headers, timeout=30)
        except httpx.HTTPError as exc:
            return 599, {"error": f"cannot reach {self.base_url}: {type(exc).__name__}"}
        try:
            body = response.json()
        except ValueError:
            body = {"error": f"HTTP {response.status_code} (not JSON)"}
        return response.status_code, body


class StoreSource:
    """The Table store, through the same HistoryApi the function app serves."""

    def __init__(self) -> None:
        from shared.adapters.tables import TableStore
        from shared.cli._settings import load_settings
        from shared.http_api import HistoryApi

        self.api = HistoryApi(TableStore.from_settings(load_settings()))

    def get(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        operation, route = {
            "deployments": ("list_deployments", {}), "apps": ("list_apps", {}),
        }.get(path, (None, {}))
        if operation is None:
            kind, _, name = path.partition("/")
            operation, route = ("get_deployment", {"id": name}) if kind == "deployments" else ("get_app", {"app": name})
        result = self.api.handle(operation, method="GET", params=params, route_params=route)
        return result.status, result.body


def _source(args: argparse.Namespace) -> ApiSource | StoreSource:
    url = args.url or os.environ.get("ACR_DEPLOY_FUNCTION_URL")
    if url:
        return ApiSource(url, os.environ.get("ACR_DEPLOY_FUNCTION_KEY"))
    return StoreSource()


def _fetch(args: argparse.Namespace, path: str, params: dict[str, Any]) -> Any:
    clean = {k: str(v) for k, v in params.items() if v not in (None, "")}
    try:
        status, body = _source(args).get(path, clean)
    except ValueError as exc:  # settings missing or broken
        print(f"acr-deploy: {exc}", file=sys.stderr)
        raise CommandFailed(EXIT_BAD_INPUT) from exc
    if status != 200:
        reason = body.get("error") if isinstance(body, dict) else None
        print(f"acr-deploy: {reason or f'HTTP {status}'}", file=sys.stderr)
        raise CommandFailed(EXIT_NOT_FOUND if status == 404 else EXIT_BAD_INPUT if status == 400 else EXIT_FAILED)
    return body


# ---------------------------------------------------------------------- commands


@_exit_codes
def cmd_history(args: argparse.Namespace) -> int:
    body = _fetch(args, "deployments", {
        "app": args.app, "environment": args.environment, "status": args.status,
        "repository": args.repository, "since": args.since, "until": args.until, "limit": args.limit,
    })
    _emit(args, body, body["items"], DEPLOYMENT_COLUMNS, "Deployments", DEPLOYMENT_TABLE)
    if body.get("continuation") and not (args.json or args.csv):
        print(f"(more: raise --limit or narrow with --since/--until)", file=sys.stderr)
    return 0


@_exit_codes
def cmd_show(args: argparse.Namespace) -> int:
    body = _fetch(args, f"deployments/{args.id}", {})
    if args.json:
        _print_json(body)
        return 0
    if args.csv:
        _emit(args, body, body["events"], EVENT_COLUMNS, "")
        return 0
    console = _console()
    lines = [f"[bold]{body['id']}[/bold]  {body['kind']} of {body['repository']}:{body['tag']} to "
             f"{body['app']} ({body['resource_group']})",
             f"image     {body['image']}", f"phase     {_styled(body['phase'])}   {body['reason']}",
             f"rule      {body['rule']} ({body['source']}), environment {body['environment'] or '-'}",
             f"pushed by {body['pushed_by'] or '-'}, event {body['event_id'] or '-'}",
             f"revision  {body['revision'] or '-'}"]
    for line in lines:
        console.print(line, highlight=False)
    _table(body["events"], EVENT_COLUMNS, "Story")
    return 0


@_exit_codes
def cmd_apps(args: argparse.Namespace) -> int:
    body = _fetch(args, "apps", {"environment": args.environment})
    rows = [{**a, "live_tag": a["live"]["tag"], "live_since": a["live"]["since"],
             "live_image": a["live"]["image"]} for a in body["items"]]
    _emit(args, body, rows, APP_COLUMNS, "Apps")
    return 0


# ---------------------------------------------------------------------- output


def _emit(args: argparse.Namespace, body: Any, rows: list[dict], columns: tuple[str, ...], title: str,
          table_columns: tuple[str, ...] | None = None) -> None:
    if args.json:
        _print_json(body)
    elif args.csv:
        write_csv(rows, columns)
    else:
        _table(rows, table_columns or columns, title)


def _print_json(body: Any) -> None:
    sys.stdout.write(json.dumps(body, indent=2, sort_keys=True) + "\n")


def _console():
    from rich.console import Console

    return Console(soft_wrap=False)


def _styled(phase: str) -> str:
    style = PHASE_STYLE.get(phase, "cyan")
    return f"[{style}]{phase}[/{style}]"


def _table(rows: list[dict], columns: tuple[str, ...], title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title or None, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = []
        for column in columns:
            value = "" if row.get(column) is None else str(row.get(column))
            if column in ("created_at", "at", "live_since", "updated_at") and value:
                value = value.replace("T", " ")[:19]
            cells.append(_styled(value) if column in ("phase", "last_phase") and value else escape(value))
        table.add_row(*cells)
    if not rows:
        print("(nothing)")
        return
    _console().print(table)
