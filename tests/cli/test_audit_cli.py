"""The release manager's CLI against a real Table store (Azurite), read directly and through the
real HistoryApi served over a loopback socket: tables that fit, times with their zone, ids by
prefix, pushes that deployed nothing, the key passed one way, and stored text never raw."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from shared.adapters.tables import TableStore
from shared.cli import main
from shared.domain.model import AppState, DeploymentEvent, IgnoredEvent, Phase
from shared.http_api import HistoryApi
from tests.cli.api_server import serve
from tests.contract.test_store_contract import T0, make

EVIL = "mallory\x1b[2J\x1b]0;owned\x07"
SINCE = "2024-04-30T00:00:00Z"


@pytest.fixture
def store(storage_connection_string, table_prefix, monkeypatch, tmp_path):
    store = TableStore.from_connection_string(storage_connection_string, table_prefix)
    for n in range(3):
        d = make("orders-api-with-a-rather-long-name", n, env="production")
        d.reason = "orders-api--v1-0-2 serves 100 % (1 attempt(s) against https://orders.example.test); kept warm"
        d.pushed_by = EVIL if n == 2 else "ci@example.com"
        state = store.get_app_state(d.target) or AppState(target=d.target, environment="production")
        store.create_deployment(d, DeploymentEvent(d.id, d.created_at, Phase.QUEUED, f"queued by {d.pushed_by}"), state)
    store.record_ignored(IgnoredEvent(at=T0, outcome="skipped", app="orders-api-with-a-rather-long-name",
                                      reason="older version: 0.9.0 sorts below 1.0.2, already accepted",
                                      event_id="ev-old", repository="orders-api-with-a-rather-long-name", tag="0.9.0",
                                      registry="demo.azurecr.io", digest="sha256:" + "9" * 64))
    store.record_ignored(IgnoredEvent(at=T0, outcome="rejected", reason="registry evil.io is not a trusted registry",
                                      event_id="ev-evil", repository="billing", tag="6.6.6", registry="evil.io"))
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {
        "AzureWebJobsStorage": storage_connection_string, "ACR_DEPLOY_TABLE_PREFIX": table_prefix}}))
    monkeypatch.chdir(tmp_path)
    for name in ("AzureWebJobsStorage", "ACR_DEPLOY_TABLE_PREFIX", "ACR_DEPLOY_FUNCTION_URL", "ACR_DEPLOY_FUNCTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # +05:30 all year: no DST to make the test date-dependent
    time.tzset()
    yield store
    monkeypatch.delenv("TZ")
    time.tzset()
    store.delete_table()


@pytest.fixture
def served(store):
    with serve(HistoryApi(store), key="k-123") as (url, seen):
        yield url, seen


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("width", [80, 120])
def test_tables_fit_the_terminal_one_line_per_row(store, capsys, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    ids = [d["id"] for d in json.loads(run(capsys, "history", "--json")[1])["items"]]
    for argv in (["history"], ["history", "--all", "--since", SINCE], ["apps"], ["rejections", "--since", SINCE],
                 ["show", ids[0]]):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        lines = out.splitlines()
        if argv[0] == "show":  # its header lines carry full values (the image); its table must fit
            lines = lines[next(i for i, line in enumerate(lines) if "Story" in line):]
        assert lines and max(len(line) for line in lines) <= width, "\n" + out
    code, out, _ = run(capsys, "history")
    assert sum(1 for line in out.splitlines() if "orders-api" in line) == 3, "one line per deployment"
    assert all(i.split("-")[1][:8] in out for i in ids) and ids[0] not in out  # short ids
    code, out, _ = run(capsys, "history", "--wide")
    assert all(i in out for i in ids)


def test_times_are_local_with_their_offset_or_utc_marked(store, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    first = json.loads(run(capsys, "history", "--json")[1])["items"][-1]
    code, out, _ = run(capsys, "history")
    assert "started (+05:30)" in out and "2024-05-01 17:30" in out  # 12:00Z in Kolkata
    code, out, _ = run(capsys, "history", "--utc")
    assert "started (UTC)" in out and "2024-05-01 12:00" in out
    code, out, _ = run(capsys, "show", first["id"])
    assert "2024-05-01 17:30:00 +05:30" in out
    code, out, _ = run(capsys, "show", first["id"], "--utc")
    assert "2024-05-01 12:00:00 UTC" in out


def test_show_takes_a_unique_prefix_and_says_when_it_is_not(store, capsys):
    items = json.loads(run(capsys, "history", "--json")[1])["items"]
    target = items[1]["id"]
    for prefix in (target.split("-")[1][:8], target[:-3]):
        code, out, err = run(capsys, "show", prefix, "--json")
        assert code == 0, err
        assert json.loads(out)["id"] == target
    code, _, err = run(capsys, "show", "2024")  # every id starts so
    assert code == 2 and "ambiguous" in err
    code, _, err = run(capsys, "show", "zzzzzzzz")
    assert code == 3 and "no recent deployment id starts with zzzzzzzz" in err


def test_every_push_is_accounted_for(store, capsys):
    code, out, _ = run(capsys, "rejections", "--since", SINCE, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {(r["outcome"], r["tag"]) for r in rows} == {("skipped", "0.9.0"), ("rejected", "6.6.6")}
    code, out, _ = run(capsys, "rejections", "billing", "--since", SINCE, "--json")
    assert [i["reason"] for i in json.loads(out)["items"]] == ["registry evil.io is not a trusted registry"]
    code, out, _ = run(capsys, "history", "orders-api-with-a-rather-long-name", "--all", "--since", SINCE, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["record"] for r in rows].count("deployment") == 3
    (skipped,) = [r for r in rows if r["record"] == "not deployed"]
    assert skipped["tag"] == "0.9.0" and "sorts below 1.0.2" in skipped["reason"]
    code, out, _ = run(capsys, "history", "--all", "--since", SINCE, "--wide")
    assert "not a trusted registry" in out and "sorts below 1.0.2" in out


def test_stored_text_never_reaches_the_terminal_raw(store, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    newest = json.loads(run(capsys, "history", "--json")[1])["items"][0]
    assert newest["pushed_by"] == EVIL  # JSON escapes it itself
    for argv in (["history", "--wide"], ["history", "--csv"], ["show", newest["id"]], ["show", newest["id"], "--csv"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        assert "\x1b" not in out and "\x07" not in out, argv
        assert "\\x1b" in out, argv


def test_one_way_to_pass_the_key_and_it_is_never_printed(served, capsys, monkeypatch):
    url, seen = served
    code, _, err = run(capsys, "history", "--url", url)
    assert code == 1 and "--code" in err and "ACR_DEPLOY_FUNCTION_KEY" in err
    code, out, _ = run(capsys, "apps", "--url", url, "--code", "k-123", "--json")
    assert code == 0 and json.loads(out)["items"]
    monkeypatch.setenv("ACR_DEPLOY_FUNCTION_KEY", "k-123")
    assert run(capsys, "history", "--url", url, "--json")[0] == 0
    monkeypatch.delenv("ACR_DEPLOY_FUNCTION_KEY")
    # A function URL copied with its key: the key goes in the header, not the query, and is not printed.
    monkeypatch.setenv("ACR_DEPLOY_FUNCTION_URL", f"{url}/api?code=k-123")
    assert run(capsys, "rejections", "--since", SINCE, "--json")[0] == 0
    assert seen[-1]["key"] == "k-123" and "k-123" not in seen[-1]["query"]
    monkeypatch.setenv("ACR_DEPLOY_FUNCTION_URL", "http://127.0.0.1:9/api?code=s3cret-key")  # nothing listens
    for argv in (["history"], ["rollback", "orders-api"], ["send-event", "orders-api:1.0.0", "--timeout", "2"]):
        code, out, err = run(capsys, *argv)
        assert code != 0 and "s3cret-key" not in out + err, argv
        assert "127.0.0.1:9" in err, argv
