"""`acr-deploy history|show|apps` against a real Table store on Azurite, and through the HTTP API."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from shared.adapters.tables import TableStore
from shared.cli import main
from shared.domain.model import AppState, DeploymentEvent, Phase
from shared.http_api import HistoryApi
from tests.cli.api_server import serve
from tests.contract.test_store_contract import make


@pytest.fixture
def seeded(storage_connection_string, table_prefix, monkeypatch, tmp_path):
    store = TableStore.from_connection_string(storage_connection_string, table_prefix)
    for n in range(3):
        d = make("orders-api", n, env="prod")
        state = store.get_app_state(d.target) or AppState(target=d.target, environment="prod")
        state.live_tag = d.tag
        store.create_deployment(d, DeploymentEvent(d.id, d.created_at, Phase.QUEUED, "queued"), state)
    d = make("billing", 7, env="staging")
    store.create_deployment(d, DeploymentEvent(d.id, d.created_at, Phase.QUEUED, "queued"), AppState(target=d.target))
    # Settings as a release manager has them: local.settings.json in the working directory.
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {
        "AzureWebJobsStorage": storage_connection_string, "ACR_DEPLOY_TABLE_PREFIX": table_prefix}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")  # rich folds cells to the terminal width
    for name in ("AzureWebJobsStorage", "ACR_DEPLOY_TABLE_PREFIX", "ACR_DEPLOY_FUNCTION_URL", "ACR_DEPLOY_FUNCTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield store
    store.delete_table()


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_of_an_app_as_json_csv_and_table(seeded, capsys):
    code, out, _ = run(capsys, "history", "orders-api", "--json")
    assert code == 0
    assert [d["tag"] for d in json.loads(out)["items"]] == ["1.0.2", "1.0.1", "1.0.0"]
    code, out, _ = run(capsys, "history", "--csv", "--limit", "2")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["app"] for r in rows] == ["billing", "orders-api"] and rows[0]["phase"] == "queued"
    code, out, _ = run(capsys, "history", "--environment", "staging")
    assert code == 0 and "billing" in out and "orders-api" not in out


def test_show_and_apps(seeded, capsys):
    dep_id = json.loads(run(capsys, "history", "billing", "--json")[1])["items"][0]["id"]
    code, out, _ = run(capsys, "show", dep_id)
    assert code == 0 and dep_id in out and "queued" in out and "Story" in out
    code, out, _ = run(capsys, "apps", "--json")
    assert sorted(a["app"] for a in json.loads(out)["items"]) == ["billing", "orders-api"]
    code, out, _ = run(capsys, "apps", "--csv")
    assert "orders-api" in out and "1.0.2" in out


def test_errors_have_reasons_and_exit_codes(seeded, capsys):
    code, _, err = run(capsys, "show", "20200101000000-0000000000")
    assert code == 3 and "no deployment" in err
    code, _, err = run(capsys, "history", "--status", "finished")
    assert code == 2 and "status must be one of" in err


def test_history_through_the_http_api(seeded, capsys, monkeypatch):
    with serve(HistoryApi(seeded)) as (base, seen):
        monkeypatch.setenv("ACR_DEPLOY_FUNCTION_KEY", "k-123")
        url = f"{base}/api"
        code, out, _ = run(capsys, "history", "orders-api", "--json", "--api", url)
        assert code == 0 and len(json.loads(out)["items"]) == 3
        assert [s["key"] for s in seen] == ["k-123"]
        # The function app's base URL (as send-event takes it) works too: /api is added.
        code, out, _ = run(capsys, "apps", "--json", "--url", url.removesuffix("/api"))
        assert code == 0 and sorted(a["app"] for a in json.loads(out)["items"]) == ["billing", "orders-api"]
        code, _, err = run(capsys, "history", "--limit", "999", "--api", url)
        assert code == 2 and "limit" in err
