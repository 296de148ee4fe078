"""Shared helpers for intake tests: a tiny RuleBook fake and ACR event builders."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from shared.domain.model import PlannedDeployment, Target

SUB = "00000000-0000-0000-0000-000000000000"
HOST = "demo.azurecr.io"
TOPIC = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/demo"
SEMVER = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def digest(n: int | str) -> str:
    return "sha256:" + format(int(n) if not isinstance(n, str) else int(n, 16), "064x")


@dataclass
class FakePlan:
    deployments: list = field(default_factory=list)
    decisions: list = field(default_factory=list)

    def reason(self) -> str:
        return "; ".join(self.decisions) or "no rules configured"


class FakeRules:
    """RuleBook stand-in: repository name = app(s); semver tags only; version_key zero-padded."""

    def __init__(self, apps: dict[str, list[str]] | None = None, allow_downgrade: bool = False,
                 registries: tuple[str, ...] = ()) -> None:
        self.apps = apps
        self.allow_downgrade = allow_downgrade
        self.registries = registries
        self.calls = 0

    def plan(self, push):
        self.calls += 1
        match = SEMVER.fullmatch(push.tag)
        if not match:
            return FakePlan([], [f"convention: tag {push.tag} is not a semver release"])
        key = ".".join(f"{int(p):06d}" for p in match.groups())
        apps = (self.apps or {}).get(push.repository, [push.repository]) if self.apps else [push.repository]
        return FakePlan([
            PlannedDeployment(push, Target(SUB, "rg", app), rule="r1", source="rules", environment="prod",
                              version_key=key, allow_downgrade=self.allow_downgrade)
            for app in apps
        ])

    def trusted_registries(self):
        return list(self.registries)


def event(tag: str = "1.0.0", dig: str | None = None, *, repository: str = "orders-api",
          event_id: str | None = None, time: str = "2024-05-01T12:00:00.1234567Z",
          host: str = HOST, topic: str = TOPIC, schema: str = "eventgrid") -> dict:
    data = {
        "id": str(uuid.uuid4()), "timestamp": time, "action": "push",
        "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
                   "digest": dig or digest(1), "length": 1, "repository": repository, "tag": tag},
        "request": {"id": "r", "host": host, "method": "PUT", "useragent": "docker"},
        "actor": {"name": "alice"},
    }
    if schema == "cloudevents":
        return {"specversion": "1.0", "id": event_id or str(uuid.uuid4()), "source": topic,
                "type": "Microsoft.ContainerRegistry.ImagePushed", "time": time,
                "subject": f"{repository}:{tag}", "data": data}
    return {"id": event_id or str(uuid.uuid4()), "topic": topic, "subject": f"{repository}:{tag}",
            "eventType": "Microsoft.ContainerRegistry.ImagePushed", "eventTime": time,
            "data": data, "dataVersion": "1.0", "metadataVersion": "1"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
