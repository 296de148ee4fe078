"""The one stored form of a rollout's progress: the deployment's `data` document (history rows, queue
start messages, the API's JSON), with a schema version.

Schema 1 is what releases before this codec wrote: the same keys, no version, values loosely typed
(numbers as they came, dates as ISO text). Schema 2 adds `"v": 2`. Both read the same way; a key this
release does not know (a newer release's) is kept aside and written back as it was, so a row survives a
save by an older worker. Dates that do not parse read as absent, as the untyped code treated them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from shared.domain.analysis import AnalysisRun
from shared.domain.approvals import ControlProgress
from shared.domain.progress import (
    BlueGreen, CheckKind, CheckProgress, CheckRun, Ending, EndingKind, RolloutProgress, TrafficRequest,
)

SCHEMA = 2
VERSION_KEY = "v"
ALLOW_DOWNGRADE = "allow_downgrade"  # intake's flag, stored beside the progress since schema 1

# Every key the codec owns; anything else in a stored document is someone else's and is kept.
_KEYS = frozenset({
    VERSION_KEY, ALLOW_DOWNGRADE, "waiting_for", "app_fqdn", "suffix", "switch_mode", "ready_by", "polls",
    "activated", "fqdn", "smoke", "smoke_retry_at", "verify", "verify_retry_at", "verify_after",
    "traffic_requested", "wake", "wake_at", "ending", "analysis", "controls", "no_checks", "pull_retries", "create_after",
    "unknown_state", "smoke_warm_until", "smoke_warmed", "smoke_warming", "verify_warm_until", "verify_warmed",
    "verify_warming", "blue_green",
})


def progress_to_dict(p: RolloutProgress, allow_downgrade: bool = False,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stored document: only what is set (an unset fact is an absent key, as in schema 1)."""
    doc: dict[str, Any] = {k: v for k, v in (extra or {}).items() if k not in _KEYS}
    doc[VERSION_KEY] = SCHEMA
    if allow_downgrade:
        doc[ALLOW_DOWNGRADE] = True
    texts = {"waiting_for": p.waiting_for, "app_fqdn": p.app_fqdn, "suffix": p.suffix, "fqdn": p.fqdn,
             "unknown_state": p.unknown_state}
    doc.update({k: v for k, v in texts.items() if v})
    if p.switch_mode:
        doc["switch_mode"] = True
    if p.activated:
        doc["activated"] = True
    if p.no_checks:
        doc["no_checks"] = True
    if p.polls:
        doc["polls"] = p.polls
    if p.pull_retries:
        doc["pull_retries"] = p.pull_retries
    if p.wake:
        doc["wake"] = p.wake
    dates = {"ready_by": p.ready_by, "verify_after": p.verify_after, "wake_at": p.wake_at,
             "create_after": p.create_after}
    doc.update({k: v.isoformat() for k, v in dates.items() if v is not None})
    for kind in CheckKind:
        check = p.smoke if kind == CheckKind.SMOKE else p.verify
        if check is not None:
            doc[kind.value] = _run_to_dict(check.run)
            if check.retry_at is not None:
                doc[f"{kind.value}_retry_at"] = check.retry_at.isoformat()
            if check.warm_until is not None:
                doc[f"{kind.value}_warm_until"] = check.warm_until.isoformat()
            if check.warmed:
                doc[f"{kind.value}_warmed"] = True
            if check.warming:
                doc[f"{kind.value}_warming"] = check.warming
    if p.traffic_requested is not None:
        t = p.traffic_requested
        doc["traffic_requested"] = {"step": t.step, "table": dict(t.table), "at": t.at.isoformat(),
                                    "checks": t.checks, "patches": t.patches}
    if p.ending is not None:
        doc["ending"] = _ending_to_dict(p.ending)
    if p.analysis is not None:
        doc["analysis"] = p.analysis.to_dict()
    if p.controls != ControlProgress():
        doc["controls"] = p.controls.to_dict()
    if p.blue_green is not None:
        doc["blue_green"] = {"labels_mode": p.blue_green.labels_mode, "before": dict(p.blue_green.before)}
    return doc


def progress_from_dict(doc: Mapping[str, Any] | None) -> tuple[RolloutProgress, bool, dict[str, Any]]:
    """(progress, allow_downgrade, the keys this release does not own) of a stored document of
    any schema. Raises nothing for odd values: a fact that does not read is absent."""
    doc = doc or {}
    checks = {kind: _check_from(doc, kind) for kind in CheckKind}
    progress = RolloutProgress(
        waiting_for=_text(doc.get("waiting_for")),
        app_fqdn=_text(doc.get("app_fqdn")),
        suffix=_text(doc.get("suffix")),
        switch_mode=bool(doc.get("switch_mode")),
        ready_by=_date(doc.get("ready_by")),
        polls=_int(doc.get("polls")),
        activated=bool(doc.get("activated")),
        fqdn=_text(doc.get("fqdn")),
        smoke=checks[CheckKind.SMOKE],
        verify=checks[CheckKind.VERIFY],
        verify_after=_date(doc.get("verify_after")),
        traffic_requested=_traffic_from(doc.get("traffic_requested")),
        wake=_int(doc.get("wake")),
        wake_at=_date(doc.get("wake_at")),
        ending=_ending_from(doc.get("ending")),
        analysis=AnalysisRun.from_dict(doc.get("analysis")) if isinstance(doc.get("analysis"), Mapping) else None,
        controls=ControlProgress.read(doc.get("controls")),
        no_checks=bool(doc.get("no_checks")),
        pull_retries=_int(doc.get("pull_retries")),
        create_after=_date(doc.get("create_after")),
        unknown_state=_text(doc.get("unknown_state")),
        blue_green=_blue_green_from(doc.get("blue_green")),
    )
    extra = {k: v for k, v in doc.items() if k not in _KEYS}
    return progress, bool(doc.get(ALLOW_DOWNGRADE)), extra


# --------------------------------------------------------------------------- parts


def _run_to_dict(run: CheckRun) -> dict[str, int]:
    return {"index": run.index, "passes": run.passes, "failures": run.failures, "attempts": run.attempts}


def _check_from(doc: Mapping[str, Any], kind: CheckKind) -> CheckProgress | None:
    raw, retry_at = doc.get(kind.value), _date(doc.get(f"{kind.value}_retry_at"))
    warm_until = _date(doc.get(f"{kind.value}_warm_until"))
    if not isinstance(raw, Mapping) and retry_at is None and warm_until is None:
        return None
    raw = raw if isinstance(raw, Mapping) else {}
    run = CheckRun(*(_int(raw.get(k)) for k in ("index", "passes", "failures", "attempts")))
    return CheckProgress(run, retry_at, warm_until, bool(doc.get(f"{kind.value}_warmed")),
                         _int(doc.get(f"{kind.value}_warming")))


def _traffic_from(raw: Any) -> TrafficRequest | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("table"), Mapping):
        return None
    table = {str(name): _int(weight) for name, weight in raw["table"].items()}
    at = _date(raw.get("at"))
    if at is None:
        return None
    return TrafficRequest(step=_int(raw.get("step")), table=table, at=at, checks=_int(raw.get("checks")),
                          patches=_int(raw.get("patches"), 1))


def _ending_to_dict(e: Ending) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": e.kind.value, "reason": e.reason}
    if e.kind == EndingKind.SUCCEED:
        doc.update(summary=e.summary, at=e.at.isoformat() if e.at else None, doomed=list(e.doomed),
                   kept=list(e.kept), problems=list(e.problems))
    return doc


def _ending_from(raw: Any) -> Ending | None:
    if not isinstance(raw, Mapping) or not raw.get("kind"):
        return None
    try:
        kind = EndingKind(str(raw["kind"]))
    except ValueError:
        # A kind this release does not know: still an ending (the worker must not re-run the
        # phase), finished as a failure that names it.
        return Ending(EndingKind.UNKNOWN, f"unknown recorded ending {raw['kind']!r}: "
                                          f"{_text(raw.get('reason'))[:300]}")
    return Ending(
        kind=kind, reason=_text(raw.get("reason")), summary=_text(raw.get("summary")),
        at=_date(raw.get("at")), doomed=_names(raw.get("doomed")), kept=_names(raw.get("kept")),
        problems=_names(raw.get("problems")),
    )


def _blue_green_from(raw: Any) -> BlueGreen | None:
    if not isinstance(raw, Mapping):
        return None
    before = raw.get("before")
    labels = {str(k): str(v) for k, v in before.items()} if isinstance(before, Mapping) else {}
    return BlueGreen(labels_mode=bool(raw.get("labels_mode")), before=labels)


def _names(raw: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in raw) if isinstance(raw, (list, tuple)) else ()


def _text(value: Any) -> str:
    return str(value) if value else ""


def _int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
