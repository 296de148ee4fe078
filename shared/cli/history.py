"""`acr-deploy history [APP]`, `show ID`, `apps`, `rejections`: the history, for people.

Data comes from the function app's HTTP API (`--url`/`--code`, see `_api`) or, without a URL, the
Table store of ./local.settings.json; both answer in the API's shapes. Tables fit 80 columns (short
ids, shortened digests, one line per row; `--wide` shows everything), times are local with their
offset (`--utc` for UTC); `--json` and `--csv` are for scripts and carry the full values.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable

from shared.cli._api import EXIT_BAD_INPUT, EXIT_NOT_FOUND, CommandFailed, add_api_flags, call, fail, source
from shared.cli._output import add_output_flags, write_csv
from shared.cli._table import table as _table
from shared.cli._text import duration, parse_iso, printable, short_id, version_of, when, zone_label

DEPLOYMENT_COLUMNS = ("id", "created_at", "app", "environment", "tag", "phase", "reason", "pushed_by", "image")
ALL_COLUMNS = ("record", "id", "created_at", "app", "environment", "repository", "tag", "phase", "reason",
               "pushed_by", "image")
APP_COLUMNS = ("app", "resource_group", "environment", "live_tag", "live_revision", "live_since", "live_image",
               "last_phase", "drift")
EVENT_COLUMNS = ("seq", "at", "phase", "message")
REJECTION_COLUMNS = ("at", "outcome", "registry", "repository", "tag", "digest", "app", "reason", "event_id")
TERMINAL = frozenset({"succeeded", "failed", "rolled_back", "superseded", "skipped"})
SCAN_PAGES = 5  # `show PREFIX` looks through at most this many pages of 200 deployments
FOLLOW_POLL_S = 1.0


def _exit_codes(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CommandFailed as failed:
            return failed.code

    run.__name__ = command.__name__
    return run


def register(subparsers: Any) -> None:
    history = subparsers.add_parser("history", help="deployments, newest first (one app's or all)")
    history.add_argument("app", nargs="?", help="Container App name")
    history.add_argument("--environment")
    history.add_argument("--status", help="a phase (succeeded, failed, ...) or 'active'")
    history.add_argument("--repository")
    history.add_argument("--since", help="ISO-8601 time or relative: 30m, 24h, 7d")
    history.add_argument("--until", help="ISO-8601 time or relative")
    history.add_argument("--limit", type=int, default=20, help="rows (1-200, default 20)")
    history.add_argument("--all", action="store_true",
                         help="also the pushes that deployed nothing (ignored, rejected, skipped) and why")
    history.add_argument("--follow", "-f", action="store_true",
                         help="stream the story of the running rollout (of APP) until it ends")
    history.add_argument("--timeout", type=float, default=600.0, help="--follow limit in seconds (default 600)")
    _common(history)
    history.set_defaults(func=cmd_history)

    show = subparsers.add_parser("show", help="one deployment's full story")
    show.add_argument("id", help="deployment id, or a unique prefix of it or of its hash part (as tables show)")
    show.add_argument("--follow", "-f", action="store_true", help="keep printing its story until it ends")
    show.add_argument("--timeout", type=float, default=600.0, help="--follow limit in seconds (default 600)")
    _common(show)
    show.set_defaults(func=cmd_show)

    apps = subparsers.add_parser("apps", help="what runs where, and since when")
    apps.add_argument("--environment")
    _common(apps)
    apps.set_defaults(func=cmd_apps)

    rejections = subparsers.add_parser("rejections", help="pushes that deployed nothing, and why")
    rejections.add_argument("app", nargs="?", help="only this app or repository (substring)")
    rejections.add_argument("--since", help="ISO-8601 time or relative (default: 7d)")
    rejections.add_argument("--until", help="ISO-8601 time or relative")
    rejections.add_argument("--limit", type=int, default=50, help="rows (1-200, default 50)")
    _common(rejections)
    rejections.set_defaults(func=cmd_rejections)


def _common(parser: argparse.ArgumentParser) -> None:
    add_output_flags(parser, json_help="JSON, as the HTTP API returns it")
    add_api_flags(parser)
    parser.add_argument("--wide", action="store_true", help="tables: full ids, digests, images and reasons")
    parser.add_argument("--utc", action="store_true", help="times in UTC (default: local time with its offset)")


# ---------------------------------------------------------------------- commands


@_exit_codes
def cmd_history(args: argparse.Namespace) -> int:
    if args.follow:
        return _follow_running(args)
    body = call(args, "GET", "deployments", {
        "app": args.app, "environment": args.environment, "status": args.status,
        "repository": args.repository, "since": args.since, "until": args.until, "limit": args.limit,
    })
    if not args.all:
        rows = [{**d, "version": version_of(d)} for d in body["items"]]
        _emit(args, body, rows, DEPLOYMENT_COLUMNS, "Deployments", _deployment_table(args))
        if body.get("continuation") and not (args.json or args.csv):
            print("(more: raise --limit or narrow with --since/--until)", file=sys.stderr)
        return 0
    nothing = _rejections(args, args.app, args.repository)
    rows = [{**d, "record": "deployment", "version": version_of(d)} for d in body["items"]]
    rows += [{**n, "record": "not deployed", "created_at": n["at"], "phase": n["outcome"],
              "version": f"{n['repository']}:{n['tag']}" if n.get("repository") else n.get("event_type", ""),
              "app": n.get("app") or "", "id": ""} for n in nothing]
    rows.sort(key=lambda r: r.get("created_at") or "", reverse=True)
    rows = rows[:args.limit]
    _emit(args, {"items": rows}, rows, ALL_COLUMNS, "Deployments, and pushes that deployed nothing",
          _deployment_table(args))
    return 0


@_exit_codes
def cmd_show(args: argparse.Namespace) -> int:
    src = source(args)
    deployment_id = _resolve_id(args, args.id, src)
    body = call(args, "GET", f"deployments/{deployment_id}", src=src)
    if args.follow and not (args.json or args.csv):
        _print_header(body, args.utc)
        return _stream(args, body, src, printed=0)
    if args.json:
        _print_json(body)
        return 0
    if args.csv:
        write_csv(body["events"], EVENT_COLUMNS)
        return 0
    _print_header(body, args.utc)
    _table(body["events"], [("seq", "#", None), ("at", f"at ({_zone(args, body['events'], 'at')})", _time(args)),
                            ("phase", "phase", None), ("message", "what happened", None)], "Story", args.wide)
    return 0


@_exit_codes
def cmd_apps(args: argparse.Namespace) -> int:
    body = call(args, "GET", "apps", {"environment": args.environment})
    rows = [{**a, "live_tag": a["live"]["tag"], "live_revision": a["live"]["revision"],
             "live_since": a["live"]["since"], "live_image": a["live"]["image"],
             "live": a["live"]["tag"] or a["live"]["revision"] or "-",
             "drift": (a.get("drift") or {}).get("detail", "")} for a in body["items"]]
    columns = [("app", "app", None), ("environment", "environment", None), ("live", "live", None),
               ("live_since", f"since ({_zone(args, rows, 'live_since')})", _time(args)),
               ("last_phase", "last", None)]
    if any(r["drift"] for r in rows):  # only when there is some: the common table stays narrow
        columns.append(("drift", "drift", None))
    if args.wide:
        columns[1:1] = [("resource_group", "resource group", None)]
        columns += [("live_revision", "revision", None), ("live_image", "image", None)]
    _emit(args, body, rows, APP_COLUMNS, "Apps", columns)
    return 0


@_exit_codes
def cmd_rejections(args: argparse.Namespace) -> int:
    items = _rejections(args, args.app, None)
    rows = [{**n, "image": f"{n['repository']}:{n['tag']}" if n.get("repository") else n.get("event_type", "")}
            for n in items]
    columns = [("at", f"when ({_zone(args, rows, 'at')})", _time(args)), ("outcome", "outcome", None),
               ("image", "image", None), ("app", "app", None), ("reason", "why", None)]
    if args.wide:
        columns += [("registry", "registry", None), ("digest", "digest", None), ("event_id", "event", None)]
    _emit(args, {"items": items}, rows, REJECTION_COLUMNS, "Pushes that deployed nothing", columns)
    return 0


def _rejections(args: argparse.Namespace, app: str | None, repository: str | None) -> list[dict[str, Any]]:
    body = call(args, "GET", "rejections", {"since": args.since, "until": args.until, "limit": args.limit})
    needle = (app or "").lower()
    return [n for n in body["items"]
            if (not needle or needle in (n.get("app") or "").lower() or needle in (n.get("repository") or "").lower())
            and (not repository or n.get("repository") == repository)]


# ---------------------------------------------------------------------- ids and following


def _resolve_id(args: argparse.Namespace, text: str, src: Any) -> str:
    """A full id as is; else the one recent deployment whose id, or hash part, starts with `text`."""
    text = text.strip()
    if len(text) >= 25 and "-" in text:
        return text
    if len(text) < 4:
        fail("give at least 4 characters of the deployment id", EXIT_BAD_INPUT)
    matches: list[str] = []
    continuation = None
    for _ in range(SCAN_PAGES):
        body = call(args, "GET", "deployments", {"limit": 200, "continuation": continuation}, src=src)
        matches += [d["id"] for d in body["items"]
                    if d["id"].startswith(text) or d["id"].partition("-")[2].startswith(text)]
        continuation = body.get("continuation")
        if not continuation or len(matches) > 1:
            break
    if not matches:
        fail(f"no recent deployment id starts with {text}", EXIT_NOT_FOUND)
    if len(matches) > 1:
        fail(f"{text} is ambiguous: {', '.join(matches[:5])}{' ...' if len(matches) > 5 else ''}", EXIT_BAD_INPUT)
    return matches[0]


def _follow_running(args: argparse.Namespace) -> int:
    src = source(args)
    body = call(args, "GET", "deployments", {"app": args.app, "status": "active", "limit": 1}, src=src)
    if not body["items"]:
        print(f"no rollout is running{' on ' + printable(args.app) if args.app else ''}")
        return 0
    running = body["items"][0]
    story = call(args, "GET", f"deployments/{running['id']}", {"app": running["app"]}, src=src)
    _print_header(story, args.utc)
    return _stream(args, story, src, printed=0)


def _stream(args: argparse.Namespace, story: dict[str, Any], src: Any, printed: int) -> int:
    """Print the story's new lines as they are recorded, until it ends or --timeout (bounded)."""
    deadline = time.monotonic() + max(0.0, args.timeout)
    while True:
        for event in story["events"]:
            if event["seq"] > printed:
                print(f"{when(event['at'], args.utc)}  {event['phase']:<17} {printable(event['message'])}", flush=True)
                printed = event["seq"]
        if story["phase"] in TERMINAL:
            print(f"{story['phase']}: {printable(story['reason'])}")
            return 0 if story["phase"] == "succeeded" else 1
        if time.monotonic() >= deadline:
            print(f"still {story['phase']} after {args.timeout:.0f} s (acr-deploy show {short_id(story['id'])})",
                  file=sys.stderr)
            return 1
        time.sleep(FOLLOW_POLL_S)
        story = call(args, "GET", f"deployments/{story['id']}", {"app": story["app"]}, src=src)


# ---------------------------------------------------------------------- output


def _print_header(body: dict[str, Any], utc: bool) -> None:
    done = body["phase"] in TERMINAL
    if body["kind"] == "rollback":
        what = f"{version_of(body)} on {body['app']} ({body['resource_group']})"
        who = "requested by"
    else:
        what = f"push of {body['repository']}:{body['tag']} to {body['app']} ({body['resource_group']})"
        who = "pushed by"
    lines = [
        f"{body['id']}  {what}",
        f"image     {body['image']}",
        f"phase     {body['phase']}   {body['reason']}",
        f"rule      {body['rule']} ({body['source']}), environment {body['environment'] or '-'}",
        f"{who:<9} {body['pushed_by'] or '-'}, event {body['event_id'] or '-'}",
        f"revision  {body['revision'] or '-'}",
        f"started   {when(body['created_at'], utc)}, " + (
            f"finished {when(body['updated_at'], utc)} ({duration(body['created_at'], body['updated_at'])})"
            if done else "running"),
    ]
    for line in lines:
        print(printable(line))


def _time(args: argparse.Namespace) -> Callable[[str], str]:
    return lambda value: when(value, args.utc, seconds=args.wide, zone=False)


def _zone(args: argparse.Namespace, rows: list[dict[str, Any]], key: str) -> str:
    """The zone for a time column's header: the first row's (local offsets can change with DST)."""
    first = next((parse_iso(r.get(key)) for r in rows if parse_iso(r.get(key))), None)
    return zone_label(first or datetime.now(timezone.utc), args.utc)


def _deployment_table(args: argparse.Namespace) -> Callable[[list[dict[str, Any]]], list[tuple]]:
    def columns(rows: list[dict[str, Any]]) -> list[tuple]:
        cols = [("created_at", f"started ({_zone(args, rows, 'created_at')})", _time(args)),
                ("app", "app", None), ("version", "version", None), ("phase", "status", None),
                ("reason", "reason", None)]
        if args.wide:
            return cols + [("pushed_by", "pushed by", None), ("id", "id", None),
                           ("digest", "digest", None)]
        return cols + [("id", "id", short_id)]
    return columns


def _emit(args: argparse.Namespace, body: Any, rows: list[dict[str, Any]], csv_columns: tuple[str, ...],
          title: str, table_columns: Any) -> None:
    if args.json:
        _print_json(body)
    elif args.csv:
        write_csv(rows, csv_columns)
    else:
        columns = table_columns(rows) if callable(table_columns) else table_columns
        _table(rows, columns, title, args.wide)


def _print_json(body: Any) -> None:
    sys.stdout.write(json.dumps(body, indent=2, sort_keys=True) + "\n")
