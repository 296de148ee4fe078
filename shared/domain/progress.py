"""What a rollout has done so far, typed: the facts its steps leave for the next step (or the next
process, after a crash).

`RolloutProgress` is frozen; a step returns a new one (`dataclasses.replace`, so a misspelt field is a
TypeError, never a silent miss). An ending that changes Azure is decided and recorded (`Ending`) before
the change: a worker killed in between finishes that ending on the next delivery instead of re-running
the phase's checks. The stored form (the deployment's `data` document) is `shared.domain.progress_codec`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Mapping

from shared.domain.analysis import AnalysisRun
from shared.domain.approvals import ControlProgress


@dataclass(frozen=True)
class CheckRun:
    """Progress through a list of checks: the current check, its consecutive passes and failures."""

    index: int = 0
    passes: int = 0
    failures: int = 0
    attempts: int = 0  # all attempts so far (bounds the loop)


class CheckKind(str, Enum):
    """The two check lists a rollout runs; the value names the attempts in the history."""

    SMOKE = "smoke"  # against the new revision's own URL, before any traffic
    VERIFY = "verify"  # against the app's URL, after each traffic step

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class CheckProgress:
    """A check list under way: where it is, and the back-off it waits out (None: attempt now)."""

    run: CheckRun = CheckRun()
    retry_at: datetime | None = None
    # Smoke checks' warm-up (a revision starting from zero replicas): until `warm_until`, attempts
    # that get no answer (or the edge's 502-504) before the first answer are `warming`, not failures.
    warm_until: datetime | None = None
    warmed: bool = False  # an answer came: failures count from now on
    warming: int = 0  # attempts spent warming up


@dataclass(frozen=True)
class TrafficRequest:
    """A traffic PATCH Azure was still applying when the step returned: confirmed by reading the app."""

    step: int
    table: Mapping[str, int]
    at: datetime
    checks: int = 0  # confirmations so far
    patches: int = 1  # PATCHes sent for this step


class EndingKind(str, Enum):
    SUCCEED = "succeed"  # deactivate the revisions the clean-up doomed
    FAIL = "fail"  # deactivate the new revision (it never served)
    ROLL_BACK = "roll_back"  # traffic back to what served before, new revision deactivated
    GIVE_UP = "give_up"  # the last delivery of a failing message: restore the app, record FAILED
    UNKNOWN = "unknown"  # a kind this release cannot read: recorded FAILED, the app left as it is

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Ending:
    """An ending decided and recorded before its Azure changes. `summary`, `at`, `doomed`, `kept`
    and `problems` are a success's clean-up plan; the other kinds carry only their reason."""

    kind: EndingKind
    reason: str = ""
    summary: str = ""
    at: datetime | None = None
    doomed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class BlueGreen:
    """A blue/green rollout (`shared.domain.labels`): the app's labels when it took the app, which a
    rollback puts back, and whether the service routes by labels (`Labels` revision mode)."""

    labels_mode: bool = False  # Labels mode: the production label carries the traffic
    before: Mapping[str, str] = field(default_factory=dict)  # label -> revision at the claim


@dataclass(frozen=True)
class RolloutProgress:
    """The facts a deployment's steps record for the steps after them."""

    waiting_for: str = ""  # QUEUED: the deployment holding the app (a history line per new holder)
    app_fqdn: str = ""  # the app's ingress host (verify checks)
    suffix: str = ""  # the new revision's revisionSuffix
    switch_mode: bool = False  # the rule lets this rollout switch a Single-mode app to Multiple
    ready_by: datetime | None = None  # WAITING_READY: fail when not ready by then
    polls: int = 0  # readiness polls so far (inline while within the budget)
    activated: bool = False  # this rollout activated its (inactive) revision: deactivate it on failure
    fqdn: str = ""  # the new revision's own host (smoke checks)
    smoke: CheckProgress | None = None
    verify: CheckProgress | None = None
    verify_after: datetime | None = None  # the canary bake ends then
    traffic_requested: TrafficRequest | None = None
    wake: int = 0  # the newest scheduled wake-up; a message with a lower number is stale
    wake_at: datetime | None = None  # when that wake-up is due (the sweeper re-sends lost ones)
    ending: Ending | None = None
    analysis: AnalysisRun | None = None  # the current traffic step's canary analysis (rollout.analysis)
    controls: ControlProgress = ControlProgress()  # approval, pause, freeze, promotion (shared.domain.approvals)
    no_checks: bool = False  # `checks: none` (rule or resource tag): the revision's health state decides
    pull_retries: int = 0  # new revisions made because the image could not be pulled yet
    create_after: datetime | None = None  # CREATING_REVISION: the pull retry's back-off ends then
    unknown_state: str = ""  # WAITING_READY: a revision state this release does not know, recorded once
    blue_green: BlueGreen | None = None  # set when this rollout moves labels (blue/green)

    def check(self, kind: CheckKind) -> CheckProgress:
        found = self.smoke if kind == CheckKind.SMOKE else self.verify
        return found or CheckProgress()

    def with_check(self, kind: CheckKind, progress: CheckProgress | None) -> "RolloutProgress":
        if kind == CheckKind.SMOKE:
            return replace(self, smoke=progress)
        return replace(self, verify=progress)

