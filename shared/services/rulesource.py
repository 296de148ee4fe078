"""`RuleBook`: every rule intake plans with, from every source, ready in microseconds.

Sources, in planning order (the first rule to plan a target keeps it):
1. the rules file (`ACR_DEPLOY_RULES_FILE`), or the zero-config convention when there is none;
2. rules from `acr-deploy.*` resource tags on Container Apps, discovered through `AppDirectory`.

Discovery goes to ARM, so its result is cached for `discovery_ttl_seconds`. Intake must answer
Event Grid fast and must keep working when ARM does not: once a first list is known, a stale
cache is served while one background thread refreshes it; a failed refresh is logged, the stale
rules stay, and the next attempt waits one more TTL (no hammering a failing ARM on every push).

Discovery is never the reason a push is lost, nor the reason an untagged app gets one more: before
a push is planned from a cache that may not know about it, the list is refreshed synchronously,
- when no tag rule covers the push's repository and it would be ignored or planned by the
  convention alone (an app tagged since the last list), at most once per repository per TTL;
- when a tag rule plans a target and the list is older than `confirm_s` (the tags may have been
  removed), so bursts of pushes share one list.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from shared.domain.controls import PROMOTION_SOURCE
from shared.domain.freeze import freeze_at
from shared.domain.model import ImagePush, PlannedDeployment, RolloutSettings
from shared.domain.rules import (
    PlanResult,
    Rule,
    RuleDecision,
    RulesError,
    convention_rule,
    load_rules_file,
    plan,
    tag_rule_problems,
    tag_rules_from_apps,
)
from shared.ports import AppDirectory
from shared.settings import Settings

log = logging.getLogger("acr_deploy.rules")

# A tag rule plans only from a list at most this old (seconds): untagging stops the next push.
CONFIRM_SECONDS = 5.0
MAX_REMEMBERED_MISSES = 1024  # repositories remembered for the once-per-TTL bound

# The function app root: the directory holding function_app.py (the Functions host's script root).
APP_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Explanation:
    """`rules explain`: the plan plus where the rules came from."""

    result: PlanResult
    sources: list[str]
    rules: list[dict[str, Any]]
    discovery: dict[str, Any]
    tag_problems: list[str] = field(default_factory=list)
    at: datetime | None = None  # when the push would arrive (freeze windows); None = its event time

    def to_dict(self) -> dict[str, Any]:
        push = self.result.push
        at = self.at or push.event_time
        return {
            "at": at.isoformat(),
            "push": {"registry": push.registry, "repository": push.repository, "tag": push.tag,
                     "digest": push.digest, "image": push.image},
            "sources": self.sources,
            "discovery": self.discovery,
            "tag_problems": self.tag_problems,
            "rules": self.rules,
            "decisions": [d.to_dict() for d in self.result.decisions],
            "deployments": [
                {
                    "deployment_id": p.deployment_id,
                    "rule": p.rule,
                    "source": p.source,
                    "subscription_id": p.target.subscription_id,
                    "resource_group": p.target.resource_group,
                    "app": p.target.app,
                    "container": p.target.container,
                    "image": p.push.image,
                    "tag": p.push.tag,
                    "environment": p.environment,
                    "version_key": p.version_key,
                    "allow_downgrade": p.allow_downgrade,
                    "rollout": p.rollout.to_dict(),
                    "release": release_gate(p, at),
                }
                for p in self.result.deployments
            ],
            "summary": self.result.reason(),
        }


def release_gate(p: PlannedDeployment, at: datetime) -> dict[str, Any]:
    """Whether a planned deployment would go ahead at `at`: freeze windows and approval."""
    controls = p.rollout.controls
    frozen = freeze_at(controls.freezes, at, rule=p.rule, app=p.target.app, environment=p.environment)
    return {
        "frozen": frozen is not None,
        "action": str(frozen.action) if frozen else "",
        "until": frozen.until.isoformat() if frozen else None,
        "windows": [w.name for w in frozen.windows] if frozen else [],
        "reason": frozen.reason() if frozen else "no freeze window holds it",
        "approval_required": controls.approval.required,
        "approvers": list(controls.approval.approvers),
    }


class RuleBook:
    def __init__(
        self,
        rules: Sequence[Rule],
        directory: AppDirectory | None = None,
        ttl: float = 60.0,
        *,
        registries: Sequence[str] = (),
        tag_rollout: RolloutSettings | None = None,
        source: str = "rules",
        disabled: Sequence[str] = (),
        background: bool = False,
        clock: Callable[[], float] = time.monotonic,
        confirm_s: float = CONFIRM_SECONDS,
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.source = source  # the rules file's path, or "zero-config convention"
        self.disabled = tuple(disabled)  # rules switched off with enabled: false (for `rules check`)
        self._registries = tuple(registries)
        self._directory = directory
        self._ttl = max(0.0, float(ttl))
        self._tag_rollout = tag_rollout
        self._confirm_s = max(0.0, float(confirm_s))
        self._misses: dict[str, float] = {}  # repository -> clock() of its last uncovered-push refresh
        self._background = background
        self._clock = clock
        self._lock = threading.Lock()  # guards the cache fields below
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self._tag_rules: list[Rule] = []
        self._loaded_at: float | None = None  # clock() of the last successful refresh
        self._generation = 0  # successful refreshes so far
        self._next_attempt = float("-inf")  # after a failure: not before this
        self._last_error = ""
        self._refreshing = False
        self._reported: set[str] = set()

    # ---- construction
    @classmethod
    def from_settings(
        cls, settings: Settings, directory: AppDirectory | None = None, *,
        root: str | Path | None = None, background: bool = True,
    ) -> "RuleBook":
        """Load the rules file (or the convention). Raises RulesError when it is broken, so a bad
        deployment of the rules fails at start-up rather than on the first push."""
        if not settings.discovery_resource_groups:
            directory = None  # discovery turned off ('-') or nowhere to look
        common = dict(directory=directory, ttl=settings.discovery_ttl_seconds, background=background)
        if settings.rules_file:
            path = Path(settings.rules_file)
            if not path.is_absolute():
                path = Path(root) if root is not None else APP_ROOT
                path = path / settings.rules_file
            loaded = load_rules_file(
                path, subscription=settings.subscription_id, resource_group=settings.resource_group,
                display=settings.rules_file,
            )
            return cls(loaded.rules, registries=loaded.registries,
                       tag_rollout=loaded.defaults_rollout, source=settings.rules_file,
                       disabled=loaded.disabled, **common).warm_up()
        if settings.subscription_id and settings.resource_group:
            rule = convention_rule(settings.subscription_id, settings.resource_group)
            return cls([rule], source="zero-config convention", **common).warm_up()
        missing = [n for n, v in (("ACR_DEPLOY_SUBSCRIPTION_ID", settings.subscription_id),
                                  ("ACR_DEPLOY_RESOURCE_GROUP", settings.resource_group)) if not v]
        if settings.subscription_id and directory is not None:
            # Resource tags alone can drive deployments; the convention needs a default group.
            log.warning("no rules file and no %s: zero-config convention off, resource tags only", missing[0])
            return cls([], source="resource tags only", **common).warm_up()
        raise RulesError(
            "(no rules file)", "convention", missing[0],
            "the zero-config convention needs ACR_DEPLOY_SUBSCRIPTION_ID and ACR_DEPLOY_RESOURCE_GROUP "
            f"(missing: {', '.join(missing)}); or set ACR_DEPLOY_RULES_FILE",
        )

    # ---- what intake calls
    def plan(self, push: ImagePush) -> PlanResult:
        # Rules with `promotion_only` take digests promoted to them (shared.services.promotion), never pushes.
        promoted = push.event_source.startswith(PROMOTION_SOURCE)
        rules = [r for r in self.rules if promoted or not r.rollout.controls.promotion_only]
        result = plan(push, [*rules, *self.tag_rules()])
        if self._recheck_needed(push, result) and self.refresh(max_age=0.0):
            result = plan(push, [*rules, *self.tag_rules()])
        if self._directory is not None and self._last_error:
            # Say so in the decisions: an ignore record then explains why a tag rule did not fire.
            when = "never loaded" if self._loaded_at is None else "using the last good list"
            result.decisions.append(
                RuleDecision("tags", "tags", False, f"resource-tag discovery failed ({when}): {self._last_error}",
                             stage="discovery")
            )
        return result

    def trusted_registries(self) -> list[str]:
        """Registries named by the rules file (`LOGIN_SERVER` or `LOGIN_SERVER=RESOURCE_ID`)."""
        return list(self._registries)

    def explain(self, push: ImagePush, at: datetime | None = None) -> Explanation:
        result = self.plan(push)
        tag_rules = self.tag_rules()
        sources = [self.source]
        if self._directory is not None:
            sources.append("resource tags (acr-deploy.repository)")
        return Explanation(
            result=result,
            sources=sources,
            rules=[r.describe() for r in (*self.rules, *tag_rules)],
            discovery=self.discovery_status(),
            tag_problems=tag_rule_problems(tag_rules),
            at=at,
        )

    def discovery_status(self) -> dict[str, Any]:
        if self._directory is None:
            return {"enabled": False}
        with self._lock:
            age = None if self._loaded_at is None else round(self._clock() - self._loaded_at, 1)
            return {"enabled": True, "apps": len(self._tag_rules), "age_s": age,
                    "ttl_s": self._ttl, "error": self._last_error}

    # ---- discovery cache
    def _recheck_needed(self, push: ImagePush, result: PlanResult) -> bool:
        """Whether the cached list may be wrong about this push (see the module doc); records the
        repository's refresh so an uncovered repository costs at most one list per TTL."""
        if self._directory is None:
            return False
        now = self._clock()
        with self._lock:
            if self._loaded_at is None or now < self._next_attempt:
                return False  # never loaded (tag_rules() just tried) or failing: wait as usual
            age = now - self._loaded_at
            if any(p.source == "tags" for p in result.deployments):
                return age >= self._confirm_s
            covered = any(d.source == "tags" and d.stage != "repository" for d in result.decisions)
            # A push the rules file plans never waits for ARM; one that would be ignored, or that only
            # the convention (a guess by name) plans, is worth one list.
            guessed = all(p.source == "convention" for p in result.deployments)
            if covered or not guessed or age < self._confirm_s:
                return False
            key = f"{push.registry}/{push.repository}".lower()
            last = self._misses.get(key)
            if last is not None and now - last < self._ttl:
                return False
            if len(self._misses) >= MAX_REMEMBERED_MISSES:
                self._misses.clear()
            self._misses[key] = now
            return True

    def tag_rules(self) -> list[Rule]:
        if self._directory is None:
            return []
        now = self._clock()
        with self._lock:
            fresh = self._loaded_at is not None and now - self._loaded_at < self._ttl
            if fresh or now < self._next_attempt:
                return self._tag_rules
            if self._background and self._loaded_at is not None:
                if not self._refreshing:
                    self._refreshing = True
                    threading.Thread(target=self._refresh_in_background, name="acr-deploy-discovery",
                                     daemon=True).start()
                return self._tag_rules
        self.refresh()
        with self._lock:
            return self._tag_rules

    def refresh(self, max_age: float | None = None) -> bool:
        """List tagged apps now, unless the list is younger than `max_age` (default: the TTL).
        Never raises: a failure keeps the last good rules."""
        max_age = self._ttl if max_age is None else max_age
        with self._lock:
            generation = self._generation
        with self._refresh_lock:
            if self._directory is None:
                return False
            started = self._clock()
            with self._lock:  # another thread may have refreshed while we waited
                loaded = self._loaded_at
                if loaded is not None and not self._last_error and (
                        started - loaded < max_age or self._generation != generation):
                    return True
            try:
                apps = self._directory.list_tagged_apps()
                rules = tag_rules_from_apps(apps, self._tag_rollout)
            except Exception as exc:  # noqa: BLE001 - discovery must never break intake of file rules
                message = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("resource-tag discovery failed; keeping %d cached tag rules: %s",
                            len(self._tag_rules), message)
                with self._lock:
                    self._last_error = message
                    self._next_attempt = self._clock() + self._ttl
                return False
            for problem in tag_rule_problems(rules):
                if problem not in self._reported:  # once per process, not once per push
                    self._reported.add(problem)
                    log.warning("ignoring invalid acr-deploy tags: %s", problem)
            with self._lock:
                self._tag_rules = rules
                self._loaded_at = self._clock()
                self._generation += 1
                self._last_error = ""
            return True

    def warm_up(self) -> "RuleBook":
        """Start the first discovery now, in the background, so the first push after a cold start
        does not pay for listing apps through ARM (it waits only for what is left of this load,
        through the refresh lock). No-op without discovery or in synchronous mode."""
        if self._directory is not None and self._background:
            with self._lock:
                if self._refreshing:
                    return self
                self._refreshing = True
            threading.Thread(target=self._refresh_in_background, name="acr-deploy-discovery",
                             daemon=True).start()
        return self

    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        finally:
            with self._lock:
                self._refreshing = False


