"""checkov scans infra/ with no failed checks, and every suppression names its check and says why.

checkov lives in its own virtualenv, .venv-checkov (requirements-infra.txt), because it pins
exact versions of shared dependencies (pycep-parser==0.5.1, packaging<24, boto3, ...) that would
downgrade the project's dev environment. Install it with:

    python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -r requirements-infra.txt

The test uses $ACR_DEPLOY_CHECKOV if set, else .venv-checkov/bin/checkov, else `checkov` on PATH,
and skips (saying so) only when none exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from infra_model import INFRA, REPO_ROOT

SKIP_COMMENT = re.compile(r"//\s*checkov:skip=(?P<check>[A-Z0-9_]+)(?::(?P<reason>.*))?")


def _checkov() -> str | None:
    for candidate in (
        os.environ.get("ACR_DEPLOY_CHECKOV"),
        str(REPO_ROOT / ".venv-checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def checkov_report():
    checkov = _checkov()
    if checkov is None:
        message = (
            "checkov is not installed: python3 -m venv .venv-checkov && "
            ".venv-checkov/bin/pip install -r requirements-infra.txt (make setup does it)"
        )
        if os.environ.get("ACR_DEPLOY_REQUIRE_E2E"):  # CI: `make test` installed it, so absence is a bug
            pytest.fail(message)
        pytest.skip(message)
    # --skip-download: no network (no Prisma Cloud guideline/policy download).
    proc = subprocess.run(
        [checkov, "--directory", str(INFRA), "--skip-download", "--output", "json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    reports = report if isinstance(report, list) else [report]
    return proc.returncode, {r.get("check_type"): r for r in reports}


def test_checkov_finds_no_failed_checks(checkov_report):
    returncode, reports = checkov_report
    assert "bicep" in reports, f"checkov scanned no Bicep (reports: {sorted(reports)})"
    failures = []
    for check_type, report in reports.items():
        for failed in report.get("results", {}).get("failed_checks", []):
            failures.append(
                f"{check_type} {failed['check_id']} {failed['resource']} "
                f"{failed['file_path']}:{failed['file_line_range']}: {failed['check_name']}"
            )
    assert not failures, "checkov failed checks:\n" + "\n".join(failures)
    assert returncode == 0


def test_checkov_parsed_every_file(checkov_report):
    _, reports = checkov_report
    summary = reports["bicep"]["summary"]
    assert summary["parsing_errors"] == 0, reports["bicep"]["results"].get("parsing_errors")
    assert summary["resource_count"] > 0 and summary["passed"] > 0


def _suppressions():
    for path in sorted(INFRA.rglob("*")):
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match:
                yield path, number, match.group("check"), (match.group("reason") or "").strip()


def test_every_suppression_names_the_check_and_says_why():
    suppressions = list(_suppressions())
    for path, number, check, reason in suppressions:
        assert re.fullmatch(r"CKV2?_AZURE_\d+", check), f"{path.name}:{number}: {check}"
        assert len(reason) >= 30, f"{path.name}:{number}: suppression of {check} needs a reason"


def test_every_suppression_is_used(checkov_report):
    """A skip comment for a check checkov no longer reports is stale: remove it."""
    _, reports = checkov_report
    skipped = {
        (os.path.basename(s["file_path"]), s["check_id"])
        for report in reports.values()
        for s in report.get("results", {}).get("skipped_checks", [])
    }
    stale = [
        f"{path.relative_to(INFRA)}:{number} {check}"
        for path, number, check, _ in _suppressions()
        if (path.name, check) not in skipped
    ]
    assert not stale, f"suppressions checkov did not use: {stale}"
