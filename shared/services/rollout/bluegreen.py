"""Blue/green with traffic labels: what a rollout does differently when it moves labels.

An app in the service's `Labels` revision mode, or a rule with `rollout.strategy: blue-green`, is rolled
out like this (docs/rollout.md, "Blue/green"):

- the new revision gets the candidate label (`rollout.label`, default `green`): in Labels mode the service
  puts it there itself (`configuration.targetLabel` on the PATCH that creates the revision), in Multiple mode
  one traffic PATCH adds it once the revision is ready (at 0 %);
- the smoke checks run on the label's own URL (`<app>---<label>.<environment domain>`);
- the shift moves the production label (`rollout.production_label`, default `blue`) to the new revision with
  all the traffic, and the revision it leaves keeps `rollout.previous_label` for an instant rollback;
- a failure before the shift removes the candidate label from the failed revision (nothing production-facing
  changes; in Labels mode the service then deactivates it), a rollback puts the production and previous labels
  back where they were when the rollout took the app.

The label arithmetic is `shared.domain.labels`; this module reads the app and writes traffic tables.
"""

from __future__ import annotations

from typing import Mapping

from shared.domain import labels as lbl
from shared.domain import traffic
from shared.domain.model import Deployment, DeploymentKind, Strategy
from shared.domain.progress import BlueGreen
from shared.ports import AppInfo
from shared.services.rollout.context import RolloutContext


def applies(d: Deployment, info: AppInfo) -> bool:
    """Blue/green: the rule asks for it, the app is in Labels mode, or a manual rollback finds the
    production label on the app (it moves that label back, not just the traffic)."""
    if d.rollout.strategy == Strategy.BLUE_GREEN or info.revisions_mode.lower() == "labels":
        return True
    return d.kind == DeploymentKind.ROLLBACK and d.rollout.production_label in info.labels


class BlueGreenSteps:
    def __init__(self, ctx: RolloutContext) -> None:
        self.ctx = ctx

    def _ordered(self, d: Deployment, labels: Mapping[str, str]) -> dict[str, str]:
        """The production label first: a revision's weight goes on its first label, and in Labels mode a
        weight travels with its label (the candidate label must never carry production's traffic)."""
        first = d.rollout.production_label
        return {**({first: labels[first]} if first in labels else {}), **labels}

    def claim(self, d: Deployment, info: AppInfo) -> tuple[Deployment, str]:
        """The deployment with its blue/green progress, or a reason to refuse it up front."""
        s = d.rollout
        held = info.labels.get(s.label)
        if (d.kind == DeploymentKind.PUSH and held and info.traffic.get(held, 0) > 0
                and info.labels.get(s.production_label) != held):
            return d, (f"label {s.label} is on {held}, which serves {info.traffic[held]} % of the traffic without "
                       f"the production label {s.production_label}: a new revision under {s.label} could take "
                       f"that traffic; move the traffic to label {s.production_label} or set rollout.label / "
                       "rollout.production_label in the rule")
        bg = BlueGreen(labels_mode=info.revisions_mode.lower() == "labels", before=dict(info.labels))
        return d.with_progress(blue_green=bg), ""

    @staticmethod
    def target_label(d: Deployment) -> str:
        """The label the service puts on the new revision (Labels mode only)."""
        bg = d.progress.blue_green
        return d.rollout.label if bg is not None and bg.labels_mode and d.kind == DeploymentKind.PUSH else ""

    def label_new(self, d: Deployment) -> str:
        """The candidate label on the (ready) new revision, at 0 %; its host ('' when the app has none)."""
        apps, label = self.ctx.apps, d.rollout.label
        info = apps.get_app(d.target)
        if info.labels.get(label) != d.revision:
            wanted = self._ordered(d, lbl.moved(info.labels, label, d.revision))
            apps.set_traffic(d.target, traffic.serving(info.traffic), labels=wanted)
            info = apps.get_app(d.target)
        return info.label_fqdns.get(label, "")

    def promotion(self, d: Deployment) -> dict[str, str]:
        """The labels of the shift: production on the new revision, previous on the one it leaves."""
        s = d.rollout
        now = self.ctx.apps.get_app(d.target).labels
        before = traffic.serving(d.previous_traffic)
        heaviest = max(before, key=lambda rev: before[rev]) if before else ""
        return self._ordered(d, lbl.promoted(now, d.revision, s.production_label, s.previous_label, heaviest))

    def restore(self, d: Deployment, table: Mapping[str, int]) -> str:
        """Roll back: traffic `table`, the production and previous labels where they were before, the
        candidate label off the new revision. Returns the history suffix."""
        bg = d.progress.blue_green
        s = d.rollout
        now = self.ctx.apps.get_app(d.target).labels
        back = lbl.restored(bg.before if bg else {}, now, (s.production_label, s.previous_label))
        if d.kind == DeploymentKind.PUSH and back.get(s.label) == d.revision:
            back = lbl.removed(back, s.label)
        back = self._ordered(d, back)
        self.ctx.apps.set_traffic(d.target, dict(table), labels=back)
        return f"; labels back: {lbl.describe(back)}"

    def unlabel_new(self, d: Deployment) -> str:
        """Before the shift: the candidate label off the new revision (it never served)."""
        if d.kind != DeploymentKind.PUSH:
            return ""
        label = d.rollout.label
        info = self.ctx.apps.get_app(d.target)
        if info.labels.get(label) != d.revision:
            return ""
        self.ctx.apps.set_traffic(d.target, traffic.serving(info.traffic),
                                  labels=self._ordered(d, lbl.removed(info.labels, label)))
        return f"; label {label} removed from {d.revision}"
