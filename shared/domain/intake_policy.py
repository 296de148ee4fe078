"""Accept a planned deployment for a target, or say why not (pure).

Given what the target's state row says, one planned push is:
- RECORDED: this very deployment is already recorded (a redelivered event): stop quietly;
- DUPLICATE: its digest already runs on the target or is queued/rolling out there (a second tag for
  the same digest, or a redelivery racing with the first): recorded as skipped;
- OLDER: a push that is live, rolling out or queued on the target outranks it (a higher version, or
  for the same version a later push: `shared.domain.precedence`) and the rule does not allow
  downgrades (a late, out-of-order event): recorded as skipped. Failed, rolled-back and superseded
  pushes rank nothing: they never block an older good version;
- ACCEPT: with the new state to write in the same transaction as the deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from shared.domain.model import AppState, Deployment, PlannedDeployment, Target
from shared.domain.precedence import Rank, newest, outranks
from shared.domain.rules.versions import is_newer_version

MAX_INFLIGHT_DIGESTS = 20  # bounded: the state row must stay small; older entries are long finished


class IntakeVerdict(str, Enum):
    ACCEPT = "accept"
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    OLDER = "older"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Candidate:
    """What the decision needs, from a plan (intake) or a recorded deployment (recovery)."""

    deployment_id: str
    target: Target
    digest: str
    tag: str
    version_key: str
    allow_downgrade: bool
    environment: str
    rule: str = ""  # named in a refusal, so a release manager knows which rule to change

    @property
    def rank(self) -> Rank:
        return Rank("" if self.allow_downgrade else self.version_key, self.deployment_id)

    @classmethod
    def from_plan(cls, plan: PlannedDeployment) -> "Candidate":
        return cls(plan.deployment_id, plan.target, plan.push.digest, plan.push.tag,
                   plan.version_key, plan.allow_downgrade, plan.environment, plan.rule)

    @classmethod
    def from_deployment(cls, d: Deployment) -> "Candidate":
        return cls(d.id, d.target, d.digest, d.tag, d.version_key,
                   d.allow_downgrade, d.environment, d.rule)


@dataclass(frozen=True)
class Decision:
    verdict: IntakeVerdict
    reason: str
    state: AppState | None = None  # ACCEPT: the state to write (etag of the one read)


def decide(c: Candidate, state: AppState | None, now: datetime) -> Decision:
    current = state or AppState(target=c.target)
    if c.deployment_id in (current.pending_deployment_id, current.active_deployment_id,
                           current.live_deployment_id, current.last_deployment_id):
        return Decision(IntakeVerdict.RECORDED, f"deployment {c.deployment_id} is already recorded")
    if c.digest and c.digest == current.live_digest:
        return Decision(
            IntakeVerdict.DUPLICATE,
            f"duplicate: {c.digest[:19]}… already live on {c.target.app}"
            + (f" (as {current.live_tag})" if current.live_tag else ""),
        )
    if c.digest in current.inflight_digests:
        return Decision(IntakeVerdict.DUPLICATE,
                        f"duplicate: {c.digest[:19]}… already queued or rolling out on {c.target.app}")
    ahead = newest(*holders(current))
    if not c.allow_downgrade and outranks(ahead, c.rank):
        live = ahead.deployment_id == current.live_deployment_id
        newer = version_label(ahead.version_key) or (current.live_tag if live else "") \
            or f"deployment {ahead.deployment_id}"
        where = "live on" if live else "rolling out or queued for"
        rule = f"rule {c.rule}" if c.rule else "the rule"
        return Decision(
            IntakeVerdict.OLDER,
            f"older version: {c.tag} is older than {newer}, {where} {c.target.app}, and {rule} "
            "does not allow downgrades",
        )
    inflight = tuple(d for d in current.inflight_digests if d != c.digest) + (c.digest,)
    new_state = replace(
        current,
        environment=c.environment or current.environment,
        pending_deployment_id=c.deployment_id,
        pending_version_key=c.rank.version_key,
        inflight_digests=inflight[-MAX_INFLIGHT_DIGESTS:],
        # The newest version accepted so far (shown; decisions use the ranks above).
        latest_version_key=(c.version_key if c.version_key and is_newer_version(c.version_key, current.latest_version_key)
                            else current.latest_version_key),
        last_deployment_id=c.deployment_id,
        last_phase="queued",
        updated_at=now,
    )
    return Decision(IntakeVerdict.ACCEPT, "accepted", new_state)


def holders(state: AppState) -> tuple[Rank, ...]:
    """The ranks of the pushes that hold a place on the app: live, active (rolling out), pending."""
    return (Rank(state.live_version_key, state.live_deployment_id),
            Rank(state.active_version_key, state.active_deployment_id),
            Rank(state.pending_version_key, state.pending_deployment_id))


def version_label(key: str) -> str:
    """The version a `version_key` stands for, as people write it (`1.5.0`, `1.6.0-rc.1`, `42`,
    `main-a`); "" when the key is empty or not one of ours. The state row keeps only the key of
    the newest accepted version, and a refusal must name that version."""
    kind, _, body = key.partition(":")
    try:
        if kind == "n":
            return _read_num(body, 0)[0]
        if kind == "a":
            return body
        if kind != "s":
            return ""
        parts, pos = [], 0
        for sep in (".", ".", ""):
            number, pos = _read_num(body, pos)
            parts.append(number)
            if sep:
                if body[pos] != sep:
                    return ""
                pos += 1
        text = ".".join(parts)
        if body[pos:] == "~":
            return text
        if body[pos] != "-":
            return ""
        idents, pos = [], pos + 1
        while pos < len(body):
            end = body.index("!", pos)
            ident = body[pos:end]
            idents.append(_read_num(ident, 1)[0] if ident[0] == "0" else ident[1:])
            pos = end + 1
        return f"{text}-{'.'.join(idents)}"
    except (IndexError, ValueError):
        return ""


def _read_num(text: str, pos: int) -> tuple[str, int]:
    """A self-delimiting number of a version key (3-digit length, then the digits) at `pos`."""
    width = int(text[pos:pos + 3])
    digits = text[pos + 3:pos + 3 + width]
    if len(digits) != width or not digits.isdigit():
        raise ValueError(text)
    return digits, pos + 3 + width
