"""Whether the rollout checks a revision over HTTP, decided when it takes the app, before any revision exists.

`shared.domain.reachability` says what makes an app unreachable from the function and what `checks:`
(rule) / `acr-deploy.checks` (resource tag) mean. With `checks: none`, the smoke phase is skipped on the
revision's health state (it was ready to get there) and each traffic step's verification is the
revision's health state at the end of a verify window: the step's bake, at least the warm-up.
"""

from __future__ import annotations

import logging

from shared.domain import revision_state as states
from shared.domain.model import CheckMode, Deployment, Phase
from shared.domain.reachability import AuthState, check_tag, effective_check_mode, refusal
from shared.ports import AppInfo
from shared.services.rollout.context import RolloutContext
from shared.services.rollout.step import Step, finish

log = logging.getLogger("acr_deploy.rollout")


class AccessGate:
    def __init__(self, ctx: RolloutContext) -> None:
        self.ctx = ctx

    def admit(self, d: Deployment, info: AppInfo) -> tuple[Deployment, Step | None, str]:
        """(`d` with its check mode recorded, the FAILED step when the checks cannot reach the app or
        None, a remark for the history line that takes the app)."""
        now = self.ctx.clock()
        try:
            mode = effective_check_mode(d.rollout.checks, check_tag(info.tags))
        except ValueError as exc:
            return d, finish(d, Phase.FAILED, f"resource tag on {d.target.app}: {exc}", now), ""
        if mode == CheckMode.NONE:
            return d.with_progress(no_checks=True), None, \
                " (checks: none: the revision's health state decides, no HTTP checks)"
        if mode == CheckMode.HTTP:
            return d, None, ""
        access = self.ctx.apps.get_access(d.target)
        refused = refusal(d.target.app, access)
        if refused:
            return d, finish(d, Phase.FAILED, refused, now), ""
        if access.auth == AuthState.UNKNOWN:
            log.warning("%s: built-in authentication not known: %s", d.target.app, access.auth_note)
            return d, None, f" (could not tell whether built-in authentication is on: {access.auth_note})"
        return d, None, ""


def verify_window_s(d: Deployment, bake_s: float) -> float:
    """The wait after a traffic step before verifying it: with HTTP checks the rule's bake, without
    them at least the warm-up (time for a crash loop or a failing health probe to show)."""
    return max(bake_s, d.rollout.warmup_s) if d.progress.no_checks else bake_s


def health_verdict(ctx: RolloutContext, d: Deployment) -> tuple[bool, str]:
    """Without HTTP checks: is the revision still healthy (or scaled to zero) after the window?"""
    rev = ctx.apps.get_revision(d.target, d.revision)
    if rev is None:
        return False, f"{d.revision} no longer exists"
    text = states.describe(rev.provisioning_state, rev.running_state, rev.health_state, rev.running_state_details)
    return rev.assessment.readiness.probe and rev.active, f"{d.revision} health state: {text}"

