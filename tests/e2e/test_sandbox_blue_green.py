"""Blue/green in the sandbox (real processes: registry, bridge, Functions host, emulator under the Bicep role):
catalog-api runs in the service's Labels revision mode (devtools/sandbox/seed.yaml)."""

from __future__ import annotations

from devtools.sandbox.push import push


def quiet(line: str) -> None:
    pass


def test_blue_green_moves_the_blue_label_and_a_broken_image_leaves_it_alone(sandbox, client):
    sb, _ = sandbox
    assert client.labels("catalog-api") == {"blue": "catalog-api--seed"}
    good = push("catalog-api:3.2.0", "ok", sb.dir, echo=quiet)
    live = client.wait_for("catalog-api", "3.2.0", "catalog-api", timeout_s=60)
    assert live["phase"] == "succeeded", live
    assert client.labels("catalog-api") == {"blue": live["revision"], "green": live["revision"],
                                            "previous": "catalog-api--seed"}
    story = [e["message"] for e in client.deployment(live["id"])["events"]]
    assert any("label green is on it" in m for m in story), story
    answers = client.serves("catalog-api", requests=4)
    assert {(a["status"], a["image"].rpartition("@")[2]) for a in answers} == {(200, good.image.digest)}

    push("catalog-api:3.2.1", "broken", sb.dir, echo=quiet)
    failed = client.wait_for("catalog-api", "3.2.1", "catalog-api", timeout_s=60)
    assert failed["phase"] == "failed", failed
    assert "label green removed" in failed["reason"], failed["reason"]
    assert client.labels("catalog-api") == {"blue": live["revision"], "previous": "catalog-api--seed"}
    answers = client.serves("catalog-api", requests=4)
    assert {a["image"].rpartition("@")[2] for a in answers} == {good.image.digest}
