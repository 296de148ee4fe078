"""Persistent state: resource groups, managed environments, container apps (with their revisions) and
long-running operations, as plain JSON-able dicts keyed by lower-cased ARM resource id (ARM ids are
case-insensitive). Behaviours, faults and config are test-time settings and are not persisted.
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

API_VERSION = "2026-07-01"
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
PROVIDER = "Microsoft.App"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rg_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def env_id(sub: str, rg: str, name: str) -> str:
    return f"{rg_id(sub, rg)}/providers/{PROVIDER}/managedEnvironments/{name}"


def app_id(sub: str, rg: str, name: str) -> str:
    return f"{rg_id(sub, rg)}/providers/{PROVIDER}/containerApps/{name}"


def key(resource_id: str) -> str:
    return resource_id.lower()


def empty_state() -> dict:
    return {"version": 1, "resourceGroups": {}, "environments": {}, "apps": {}, "operations": {}}


def load(path: str | os.PathLike | None) -> dict:
    if not path or not Path(path).exists():
        return empty_state()
    data = json.loads(Path(path).read_text() or "{}")
    state = empty_state()
    state.update({k: data.get(k, v) for k, v in state.items()})
    return state


def save(path: str | os.PathLike | None, state: dict) -> None:
    """Atomic write (temp file + rename) so a crash never leaves half a state file."""
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".aca-emulator-state-")
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=1, sort_keys=True)
    os.replace(tmp, target)
