"""Discovery is never the reason a push is lost: tagging an app with the real SDK makes the very
next push deploy to it, untagging stops the very next one. RuleBook over the real adapter and the
Container Apps emulator; a fake monotonic clock moves the cache's age (no sleeping)."""

from __future__ import annotations

import pytest

from shared.services.rulesource import RuleBook
from tests.integration.test_containerapps_adapter import make_adapter, rg, seed_app  # noqa: F401 - rg fixture
from tests.unit.rules_support import FakeClock, push


def set_tags(arm_client, target, tags: dict[str, str]) -> None:
    """What a user does in the portal or with `az containerapp update --tags`: a PUT of the app."""
    app = arm_client.container_apps.get(target.resource_group, target.app)
    app.tags = tags
    arm_client.container_apps.begin_create_or_update(target.resource_group, target.app, app).result()


@pytest.fixture
def directory(emulator, rg):  # noqa: F811 - the fixture imported above
    adapter = make_adapter(emulator, rg)
    yield adapter
    adapter.close()


def test_tagging_deploys_the_next_push_and_untagging_stops_the_next_one(emulator, rg, directory, arm_client):  # noqa: F811
    target = seed_app(emulator, rg, mode="Single")
    repository = f"src-{target.app}"
    clock = FakeClock()
    book = RuleBook([], directory=directory, ttl=60.0, clock=clock, background=False)
    assert book.plan(push(repository, "1.0.0")).deployments == []  # first list: the app is not tagged
    assert book.discovery_status()["age_s"] == 0

    set_tags(arm_client, target, {"acr-deploy.repository": repository, "team": "a"})
    clock.now += 10  # well within the 60 s TTL: the cached list does not know the tag
    (planned,) = book.plan(push(repository, "1.0.1")).deployments
    assert (planned.target.app, planned.source) == (target.app, "tags")

    set_tags(arm_client, target, {"team": "a"})
    clock.now += 6  # older than the confirmation age, still within the TTL
    result = book.plan(push(repository, "1.0.2"))
    assert result.deployments == [] and not any(d.source == "tags" for d in result.decisions)
