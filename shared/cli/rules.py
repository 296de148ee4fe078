"""`acr-deploy rules check` and `acr-deploy rules explain REPO:TAG`.

check: validate the rules file the function app would load (exit 0 with a summary; exit 1 with
every problem, each naming file, line, rule and field).
explain: a dry run of planning for one push: which rules match, which do not and why, and what
would be deployed where. Nothing is written anywhere.
Readable tables by default; `--json` and `--csv` (same data, one row per rule / problem / decision)
for scripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shared.cli._output import add_output_flags, write_csv
from shared.cli._settings import load_settings
from shared.domain.model import ImagePush
from shared.domain.references import REPOSITORY, login_servers, split_registry
from shared.domain.rules import RulesError
from shared.services.rulesource import RuleBook

PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

# --csv columns. Several values in one cell (repositories, targets) are joined with LIST_SEP.
CHECK_COLUMNS = ("name", "source", "repository", "policy", "targets", "environment")
PROBLEM_COLUMNS = ("file", "line", "rule", "field", "message")
EXPLAIN_COLUMNS = ("rule", "source", "matched", "stage", "reason", "app", "resource_group", "subscription",
                   "container", "image", "at")
LIST_SEP = ";"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rules", help="check the rules file; explain what a push would deploy",
        description="Check the rules file, or explain (dry run) what a push would deploy.",
    )
    sub = parser.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: _help(parser))

    check = sub.add_parser("check", help="validate the rules file (exit 1 listing every problem)")
    check.add_argument("--file", help="rules file (default: ACR_DEPLOY_RULES_FILE)")
    add_output_flags(check, json_help="machine-readable output",
                     csv_help=f"CSV: one row per rule (lists joined with '{LIST_SEP}'), or per problem")
    check.set_defaults(func=cmd_check)

    explain = sub.add_parser(
        "explain", help="dry run: which rules take REPO:TAG, and what would deploy where",
    )
    explain.add_argument("ref", metavar="[REGISTRY/]REPO:TAG", help="e.g. orders-api:1.4.2")
    explain.add_argument("--file", help="rules file (default: ACR_DEPLOY_RULES_FILE)")
    explain.add_argument("--registry", help="login server (default: the first trusted registry)")
    explain.add_argument("--digest", help="image digest (default: a placeholder)")
    explain.add_argument("--at", metavar="TIME",
                         help="when the push would arrive, ISO 8601 (e.g. 2026-12-24T18:00+01:00; "
                              "no offset = UTC): freeze windows are checked then (default: now)")
    explain.add_argument("--discover", action="store_true",
                         help="also discover rules from acr-deploy.* resource tags (calls ARM)")
    add_output_flags(explain, json_help="machine-readable output",
                     csv_help="CSV: one row per (rule, target) decision")
    explain.set_defaults(func=cmd_explain)


def _row(table, *cells: str) -> None:
    """Cells as plain text: rule names, tags and reasons may contain '[...]' (rich markup)."""
    from rich.text import Text

    table.add_row(*(Text(c or "") for c in cells))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _console():
    from rich.console import Console

    # Not a terminal (a pipe, a test): wide enough that tables do not wrap mid-word.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def _book(args: argparse.Namespace, settings, directory=None) -> RuleBook:
    if args.file:
        settings = dataclasses.replace(settings, rules_file=args.file)
    # The CLI runs where the user is: relative paths are relative to the current directory.
    return RuleBook.from_settings(settings, directory=directory, root=Path.cwd(), background=False)


def _settings_or_exit():
    try:
        return load_settings()
    except ValueError as exc:
        print(f"acr-deploy: {exc}", file=sys.stderr)
        return None


# --------------------------------------------------------------------------- check


def cmd_check(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    if settings is None:
        return 2
    try:
        book = _book(args, settings)
    except RulesError as exc:
        problems = [dataclasses.asdict(p) for p in exc.problems]
        if args.json:
            print(json.dumps({"ok": False, "problems": problems}, indent=2))
        elif args.csv:
            write_csv(problems, PROBLEM_COLUMNS)
        else:
            console = _console()
            count = len(exc.problems)
            console.print(f"{exc.file}: {count} problem{'s' if count != 1 else ''}", markup=False)
            for problem in exc.problems:
                console.print(f"  {problem}", markup=False)
        return 1
    rules = [r.describe() for r in book.rules]
    if args.json:
        print(json.dumps({"ok": True, "source": book.source, "rules": rules,
                          "disabled": list(book.disabled),
                          "registries": book.trusted_registries()}, indent=2))
        return 0
    if args.csv:
        write_csv(check_rows(rules), CHECK_COLUMNS)
        return 0
    console = _console()
    off = f" ({len(book.disabled)} disabled: {', '.join(book.disabled)})" if book.disabled else ""
    console.print(f"{book.source}: OK, {len(rules)} rule{'s' if len(rules) != 1 else ''}{off}", markup=False)
    if book.source == "zero-config convention":
        console.print(
            "No rules file (ACR_DEPLOY_RULES_FILE unset): each repository deploys to the Container App "
            f"of the same name in {settings.resource_group}, semver release tags only.", markup=False,
        )
    _rules_table(console, rules)
    if book.trusted_registries():
        console.print("Registries: " + ", ".join(book.trusted_registries()), markup=False)
    return 0


def check_rows(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`Rule.describe()` dicts -> --csv rows of CHECK_COLUMNS."""
    return [
        {"name": r["name"], "source": r["source"], "repository": LIST_SEP.join(r["repositories"]),
         "policy": r["tags"], "targets": LIST_SEP.join(r["targets"]), "environment": r["environment"]}
        for r in rules
    ]


def _rules_table(console, rules: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(show_lines=False)
    for column in ("Rule", "Repository", "Tags", "Ignore", "Targets", "Env", "Rollout"):
        table.add_column(column)
    for r in rules:
        rollout = r["strategy"] + ("" if r["strategy"] == "all-at-once" else f" {r['steps']}")
        _row(
            table, r["name"], ", ".join(r["repositories"]), r["tags"], ", ".join(r["ignore"]),
            "\n".join(r["targets"]), r["environment"], rollout,
        )
    console.print(table)


# --------------------------------------------------------------------------- explain


def parse_ref(ref: str) -> tuple[str | None, str, str, str | None]:
    """'[registry/]repo:tag[@digest]' -> (registry, repository, tag, digest). Raises ValueError."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    registry, rest = split_registry(ref)
    repository, sep, tag = rest.rpartition(":")
    if not sep or "/" in tag:
        raise ValueError(f"{ref!r}: expected REPOSITORY:TAG, e.g. orders-api:1.4.2")
    if not REPOSITORY.fullmatch(repository):
        raise ValueError(f"{repository!r} is not a repository name (OCI distribution spec)")
    if not TAG.match(tag):
        raise ValueError(f"{tag!r} is not a valid tag")
    return registry, repository, tag, digest


def cmd_explain(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    if settings is None:
        return 2
    try:
        registry, repository, tag, digest = parse_ref(args.ref)
    except ValueError as exc:
        print(f"acr-deploy: {exc}", file=sys.stderr)
        return 2
    digest = args.digest or digest or PLACEHOLDER_DIGEST
    if not DIGEST.match(digest):
        print(f"acr-deploy: {digest!r} is not a digest (sha256: and 64 hex digits)", file=sys.stderr)
        return 2
    try:
        at = parse_at(args.at) if args.at else datetime.now(timezone.utc)
    except ValueError as exc:
        print(f"acr-deploy: {exc}", file=sys.stderr)
        return 2
    directory = None
    if args.discover:
        from shared.bootstrap import Container

        directory = Container(settings).container_apps
    try:
        book = _book(args, settings, directory)
    except RulesError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    trusted = login_servers([*settings.registries, *book.trusted_registries()])
    registry = (args.registry or registry or (trusted[0] if trusted else "registry.example")).lower()
    push = ImagePush(
        event_id="explain", event_source="", event_time=at,
        registry=registry, repository=repository, tag=tag, digest=digest, actor="acr-deploy explain",
    )
    explanation = book.explain(push, at)
    registry_note = (
        "" if registry in trusted
        else f"registry {registry} is not trusted (ACR_DEPLOY_REGISTRIES or registries:): intake would reject this push"
    )
    if args.json:
        data = explanation.to_dict()
        data["registry_trusted"] = registry in trusted
        data["placeholder_digest"] = digest == PLACEHOLDER_DIGEST
        print(json.dumps(data, indent=2))
        return 0
    if args.csv:
        if registry_note:  # the rows cannot carry it; stdout stays pure CSV
            print(f"acr-deploy: {registry_note}", file=sys.stderr)
        write_csv(explain_rows(explanation.to_dict()), EXPLAIN_COLUMNS)
        return 0
    _print_explanation(explanation.to_dict(), registry_note, digest == PLACEHOLDER_DIGEST)
    return 0


def parse_at(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"--at {text!r}: expected an ISO 8601 time, e.g. 2026-12-24T18:00+01:00") from exc
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def gate_words(release: dict[str, Any]) -> str:
    """One planned deployment's release gate, in words (the table's and the CSV's `at` cell)."""
    if release["frozen"]:
        verb = "skipped" if release["action"] == "skip" else f"waits until {release['until']}"
        words = f"{verb}: frozen by {', '.join(release['windows'])}"
    else:
        words = "deploys"
    if release["approval_required"]:
        who = ", ".join(release["approvers"]) or "anyone allowed"
        words += f"; needs approval ({who})"
    return words


def explain_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """An explanation's dict -> --csv rows: one per (rule, target) the rule would deploy to, and one
    with empty target cells for a rule that deploys nothing. `image` is filled only where a
    deployment would be made, from the planned deployment itself."""
    images = {(p["rule"], p["subscription_id"], p["resource_group"], p["app"], p["container"]): p["image"]
              for p in data["deployments"]}
    gates = {(p["rule"], p["subscription_id"], p["resource_group"], p["app"], p["container"]): gate_words(p["release"])
             for p in data["deployments"]}
    rows = []
    for d in data["decisions"]:
        base = {k: d[k] for k in ("rule", "source", "matched", "stage", "reason")}
        for t in d["targets"] or [None]:
            row = dict(base)
            if t is not None:
                row.update(app=t["app"], resource_group=t["resource_group"], subscription=t["subscription_id"],
                           container=t["container"],
                           image=images.get((d["rule"], t["subscription_id"], t["resource_group"], t["app"],
                                             t["container"])),
                           at=gates.get((d["rule"], t["subscription_id"], t["resource_group"], t["app"],
                                         t["container"])))
            rows.append(row)
    return rows


def _print_explanation(data: dict[str, Any], registry_note: str, placeholder: bool) -> None:
    from rich.table import Table

    console = _console()
    push = data["push"]
    console.print(f"Push {push['registry']}/{push['repository']}:{push['tag']}"
                  + (" (placeholder digest)" if placeholder else f" ({push['digest']})"), markup=False)
    console.print("Rules from: " + "; ".join(data["sources"]), markup=False)
    if data["discovery"].get("error"):
        console.print(f"Resource-tag discovery failed: {data['discovery']['error']}", markup=False)
    for problem in data["tag_problems"]:
        console.print(f"Invalid resource tags: {problem}", markup=False)
    if registry_note:
        console.print(f"Note: {registry_note}", markup=False)
    table = Table(title="Rules")
    for column in ("Rule", "Source", "Match", "Why"):
        table.add_column(column)
    for d in data["decisions"]:
        _row(table, d["rule"], d["source"], "yes" if d["matched"] else "no", d["reason"])
    console.print(table)
    if not data["deployments"]:
        console.print(f"Nothing would be deployed: {data['summary']}", markup=False)
        return
    table = Table(title="Would deploy")
    for column in ("App", "Resource group", "Container", "Rule", "Env", "Rollout", "Image", f"At {data['at']}"):
        table.add_column(column)
    for p in data["deployments"]:
        rollout = p["rollout"]
        strategy = rollout["strategy"] + ("" if rollout["strategy"] == "all-at-once" else f" {list(rollout['steps'])}")
        _row(table, p["app"], p["resource_group"], p["container"] or "", p["rule"],
                      p["environment"], strategy, p["image"], gate_words(p["release"]))
    console.print(table)
