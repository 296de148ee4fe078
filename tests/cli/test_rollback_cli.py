"""`acr-deploy rollback --csv` formatting. The real run (queue, worker, --json) is covered by
tests/scenario/test_rollout_scenarios.py::test_the_cli_queues_a_rollback and the sandbox e2e test."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from shared.cli import build_parser
from shared.cli.rollback import ROLLBACK_COLUMNS, write_rollback_csv
from shared.domain.model import Deployment, DeploymentKind, Phase, Target, deployment_to_dict

SUB = "00000000-0000-0000-0000-000000000000"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def rollback(phase: Phase = Phase.QUEUED, reason: str = "") -> Deployment:
    return Deployment(
        id="20240501120000-0123456789", target=Target(SUB, "apps", "orders-api"), kind=DeploymentKind.ROLLBACK,
        phase=phase, created_at=T0, updated_at=T0, image="myreg.azurecr.io/orders-api@sha256:" + "ab" * 32,
        revision="orders-api--v1-4-1", rollback_to="orders-api--v1-4-1", reason=reason,
    )


def parse(text: str) -> tuple[list[str], list[dict[str, str]]]:
    header = next(csv.reader(io.StringIO(text)))
    return header, list(csv.DictReader(io.StringIO(text)))


def test_one_row_with_a_header_and_the_values_json_prints():
    d = rollback(Phase.SUCCEEDED, "traffic back on orders-api--v1-4-1")
    out = io.StringIO()
    write_rollback_csv(d, out)
    header, rows = parse(out.getvalue())
    assert header == ["id", "app", "revision", "phase", "reason"] == list(ROLLBACK_COLUMNS)
    assert rows == [{"id": "20240501120000-0123456789", "app": "orders-api", "revision": "orders-api--v1-4-1",
                     "phase": "succeeded", "reason": "traffic back on orders-api--v1-4-1"}]
    as_json = deployment_to_dict(d)
    assert rows[0] == {c: str(as_json[c]) for c in ROLLBACK_COLUMNS}


def test_reasons_with_commas_quotes_and_newlines_survive_the_round_trip():
    reason = 'smoke check failed: GET /health -> 500, body "down"\nrestored 100 % to orders-api--v1-4-0'
    out = io.StringIO()
    write_rollback_csv(rollback(Phase.ROLLED_BACK, reason), out)
    (row,) = parse(out.getvalue())[1]
    assert row["reason"] == reason and row["phase"] == "rolled_back"


def test_empty_fields_are_empty_cells_not_none():
    d = rollback()
    d.revision = ""
    out = io.StringIO()
    write_rollback_csv(d, out)
    (row,) = parse(out.getvalue())[1]
    assert row["revision"] == "" and row["reason"] == "" and row["phase"] == "queued"
    assert "None" not in out.getvalue()


def test_writes_to_stdout_by_default(capsys):
    write_rollback_csv(rollback())
    header, rows = parse(capsys.readouterr().out)
    assert header == list(ROLLBACK_COLUMNS) and rows[0]["app"] == "orders-api"


def test_csv_and_json_are_mutually_exclusive(capsys):
    parser = build_parser()
    args = parser.parse_args(["rollback", "orders-api", "--csv"])
    assert (args.csv, args.json) == (True, False)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["rollback", "orders-api", "--csv", "--json"])
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err
