"""Builders shared by the rules tests (pushes, apps, a fake AppDirectory); no tests here."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from shared.domain.model import ImagePush, Target
from shared.ports import AppInfo

SUB = "00000000-0000-0000-0000-000000000000"


def push(repository: str, tag: str, registry: str = "myreg.azurecr.io", event_id: str = "evt-1") -> ImagePush:
    digest = "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()
    return ImagePush(
        event_id=event_id,
        event_source="/subscriptions/x/resourceGroups/r/providers/Microsoft.ContainerRegistry/registries/myreg",
        event_time=datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
        registry=registry,
        repository=repository,
        tag=tag,
        digest=digest,
    )


def app(name: str, tags: dict[str, str], rg: str = "apps", images: dict[str, str] | None = None) -> AppInfo:
    return AppInfo(
        target=Target(SUB, rg, name),
        revisions_mode="Single",
        traffic={},
        fqdn=f"{name}.example.test",
        latest_revision=f"{name}--1",
        images=images if images is not None else {name: f"myreg.azurecr.io/{name}:1.0.0"},
        tags=tags,
    )


class FakeDirectory:
    """AppDirectory over a list; counts calls and can be told to fail."""

    def __init__(self, apps: list[AppInfo]) -> None:
        self.apps = list(apps)
        self.calls = 0
        self.error: Exception | None = None

    def list_tagged_apps(self) -> list[AppInfo]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return list(self.apps)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
