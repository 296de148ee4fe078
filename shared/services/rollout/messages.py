"""The rollout queue's message format: intake's start message and the worker's wake-ups.

    {"v": 1, "kind": "advance", "deployment_id": ..., "target_key": ...,
     "wake": <n>,            # a scheduled wake-up: dropped when the record holds a newer number
     "deployment": {...}}    # a start message: the whole deployment, so the worker can record it
                             # if intake died between the enqueue and its table write
    {"v": 1, "kind": "drift", "target_key": ...}   # compare the app with the history (drift.py),
                             # sent with a delay after every ending: a write that landed late shows
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from shared.domain.model import Deployment, deployment_from_dict, deployment_to_dict

VERSION = 1
ADVANCE = "advance"
DRIFT = "drift"
DRIFT_RECHECK_S = 30.0  # after an ending: longer than a write's time-out (adapters/containerapps.py)


def drift_message(target_key: str) -> dict[str, Any]:
    return {"v": VERSION, "kind": DRIFT, "target_key": target_key}


def drift_target_key(raw: Mapping[str, Any] | None) -> str | None:
    """The app a drift message names, or None when `raw` is not a drift message."""
    if isinstance(raw, Mapping) and raw.get("kind") == DRIFT and isinstance(raw.get("target_key"), str):
        return raw["target_key"] if raw["target_key"].count("|") == 2 else None
    return None


def advance_message(deployment_id: str, target_key: str, wake: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "v": VERSION, "kind": ADVANCE, "deployment_id": deployment_id, "target_key": target_key,
    }
    if wake is not None:
        message["wake"] = wake
    return message


def advance_message_of(d: Deployment, wake: int | None = None) -> dict[str, Any]:
    return advance_message(d.id, d.target.key, wake)


def start_message(d: Deployment) -> dict[str, Any]:
    """The message intake sends for a new deployment (and manual rollback for its request)."""
    return {**advance_message_of(d), "deployment": deployment_to_dict(d)}


@dataclass(frozen=True)
class RolloutMessage:
    """A received message, read leniently: what is missing or malformed reads as absent."""

    deployment_id: str
    app: str | None  # from the target key: the store reads the record in the app's partition
    wake: int | None
    payload: Mapping[str, Any] | None = None  # a start message's deployment, as sent

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> "RolloutMessage":
        raw = raw if isinstance(raw, Mapping) else {}
        wake, payload = raw.get("wake"), raw.get("deployment")
        return cls(
            deployment_id=str(raw.get("deployment_id") or ""),
            app=str(raw.get("target_key") or "").rpartition("|")[2] or None,
            wake=None if wake is None else _int(wake),
            payload=payload if isinstance(payload, Mapping) else None,
        )

    def start_deployment(self) -> Deployment | None:
        """The deployment a start message carries (None: not a start message). Read only when the
        store lacks the record. Raises ValueError when the payload does not read."""
        if self.payload is None:
            return None
        try:
            return deployment_from_dict(dict(self.payload))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(str(exc) or type(exc).__name__) from exc

def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
