"""WAITING_READY's less common answers: an image the app's region cannot pull yet, and states never seen.

A geo-replicated registry replicates eventually: an app in another region can fail to pull a digest
pushed seconds ago (MANIFEST_UNKNOWN). A failed revision cannot be started again, and its name is
taken, so a retry is a new revision (`revision_suffix(..., attempt=n)`) after a back-off, bounded in
count and to a few minutes after the push (`shared.domain.revision_state`), each recorded. A state
this release does not know is logged and recorded once, then waited on until the ready time-out.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.domain import revision_state as states
from shared.domain import rollout as plan
from shared.domain.model import Deployment, DeploymentKind, Phase
from shared.ports import RevisionInfo
from shared.services.rollout.context import RolloutContext
from shared.services.rollout.step import Step, Wait, recorded, to_phase

log = logging.getLogger("acr_deploy.rollout")


def describe(rev: RevisionInfo, details: bool = True) -> str:
    return states.describe(rev.provisioning_state, rev.running_state, rev.health_state,
                           rev.running_state_details if details else "")


def pull_retry(ctx: RolloutContext, d: Deployment, rev: RevisionInfo) -> Step | None:
    """A new revision for a pull failure soon after the push (None: the failure stands)."""
    now = ctx.clock()
    detail = rev.assessment.detail
    since_push = (now - d.created_at).total_seconds()
    if d.kind != DeploymentKind.PUSH or not states.may_retry_pull(detail, d.progress.pull_retries, since_push):
        return None
    retry = d.progress.pull_retries + 1
    delay = states.pull_retry_delay_s(retry)
    suffix = plan.revision_suffix(d.target.app, d.tag, d.digest or plan.digest_of(d.image), attempt=retry)
    name = plan.revision_name(d.target.app, suffix)
    old = d.revision
    d = d.evolve(revision=name).with_progress(
        suffix=suffix, pull_retries=retry, create_after=now + timedelta(seconds=delay), ready_by=None, polls=0,
        activated=False, unknown_state="")
    return to_phase(d, Phase.CREATING_REVISION, (
        f"{old} could not pull {d.image}: {detail[:300]}. The registry's replica in the app's region may not "
        f"have it yet: retry {retry}/{states.MAX_PULL_RETRIES} as {name} in {delay:g} s"), now,
        failed_revision=old, pull_retry=retry)


def unknown_state(ctx: RolloutContext, d: Deployment, rev: RevisionInfo) -> Step | None:
    """The first poll that shows a given unknown state: log it and say so in the history (None: seen)."""
    text = describe(rev)
    if rev.assessment.readiness != states.Readiness.UNKNOWN or d.progress.unknown_state == text:
        return None
    log.warning("%s: revision %s reports a state this release does not know: %s", d.id, d.revision, text)
    d = d.with_progress(unknown_state=text)
    note = plan.note(d, f"{d.revision} reports a state this release does not know ({text}); waiting for it "
                        f"to become ready until the ready time-out", ctx.clock(), revision_state=text)
    return recorded(d, note, next=Wait(ctx.tick_s))
