"""What `function_app.py` calls: one function per trigger kind, framework types already unwrapped.

Kept free of business logic: it converts binding payloads to plain data and delegates to the
services wired by `shared.bootstrap`. The dev host and tests call these same functions through
`function_app.py`, so there is one code path.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.adapters.queues import ROLLOUT_QUEUE  # noqa: F401 - function_app.py binds its trigger to it
from shared.http_api import HttpResult


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def event_to_dict(event: Any) -> dict[str, Any]:
    """Rebuild the wire-format dict (either schema) from the Functions binding object, so the pure
    parser sees exactly what Event Grid sent. Plain dicts pass through (tests, dev host)."""
    if isinstance(event, dict):
        return event
    if hasattr(event, "specversion"):  # func.CloudEvent
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "time": _iso(event.time),
            "subject": event.subject,
            "datacontenttype": event.datacontenttype,
            "data": event.get_json(),
        }
    return {  # func.EventGridEvent
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": _iso(event.event_time),
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def check_configuration() -> None:
    """Fail loudly at start-up (import of function_app.py) on broken settings or a broken rules
    file, naming the setting or the file, rule and field, rather than on the first push.
    Cheap: parses settings and the rules file only; builds no client and calls nothing remote."""
    from shared.settings import Settings

    from shared.domain.trust import trusted_registries

    settings = Settings.from_env()  # ValueError names the setting
    try:
        trusted_registries(settings.registries)
    except ValueError as exc:
        raise ValueError(f"ACR_DEPLOY_REGISTRIES: {exc}") from exc
    if settings.rules_file:
        from shared.services.rulesource import RuleBook

        RuleBook.from_settings(settings, directory=None, background=False)  # RulesError


def handle_event(raw: dict[str, Any]) -> Any:
    from shared.bootstrap import get_container

    return get_container().intake.handle(raw)


def handle_rollout_message(body: str, dequeue_count: int = 1) -> None:
    import logging

    from shared.bootstrap import get_container

    try:
        message = json.loads(body)
    except ValueError:
        # Not ours (nothing to record it against): say so and drop it rather than let it retry
        # into the poison queue unexplained.
        logging.getLogger("acr_deploy.rollout").error(
            "rollout message is not JSON; dropped: %r", body[:200])
        return
    except RecursionError:  # hostile nesting: as unreadable as non-JSON
        logging.getLogger("acr_deploy.rollout").error("rollout message nested too deeply; dropped")
        return
    from shared.services.rollout.messages import drift_target_key

    target_key = drift_target_key(message)
    if target_key is not None:  # the check every ending schedules (shared/services/drift.py)
        from shared.domain.model import Target

        get_container().drift.reconcile_app(Target.from_key(target_key))
        return
    get_container().rollout.handle_message(message if isinstance(message, dict) else {}, dequeue_count)


def handle_sweep() -> None:
    """Rollouts first; then, when due, one bounded batch of retention (which never blocks the sweep)."""
    from shared.bootstrap import get_container

    container = get_container()
    try:
        container.rollout.sweep()
    finally:
        container.retention.purge()


def handle_drift() -> None:
    from shared.bootstrap import get_container

    get_container().drift.reconcile()


def handle_http(
    operation: str,
    *,
    method: str,
    params: dict[str, str],
    route_params: dict[str, str],
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> HttpResult:
    from shared.bootstrap import get_container

    return get_container().api.handle(
        operation, method=method, params=params, route_params=route_params, body=body, headers=headers
    )
