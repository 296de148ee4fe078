"""Which of two pushes to one app is newer: the single order intake and rollout both obey (pure).

A push outranks another when its version is higher under its rule's version order. Where versions do
not decide (the same version re-tagged with another digest, keys of different kinds, a rule that allows
downgrades and so has no version order), the push time decides, then the deployment id: ids start with
the event time to the second (`PlannedDeployment.deployment_id`), and the hash after it only breaks ties
between pushes of the same second, the same way everywhere.

Invariants (tests/unit/test_precedence.py): `outranks` is irreflexive and asymmetric; for pushes whose
keys are all of one kind it is a strict total order (transitive), so "newest push wins" and "versions
never go back" are the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.rules.versions import compare_versions


@dataclass(frozen=True)
class Rank:
    version_key: str  # "" when the rule gives no version order (allow_downgrade) or the tag has none
    deployment_id: str

    @property
    def known(self) -> bool:
        return bool(self.deployment_id)


NOBODY = Rank("", "")


def outranks(a: Rank, b: Rank) -> bool:
    """True when `a` is the newer push. Anything outranks NOBODY; NOBODY outranks nothing."""
    if not a.known:
        return False
    if not b.known:
        return True
    if a.version_key and b.version_key:
        order = compare_versions(a.version_key, b.version_key)
        if order:
            return order > 0
    return a.deployment_id > b.deployment_id


def newest(*ranks: Rank) -> Rank:
    best = NOBODY
    for r in ranks:
        if outranks(r, best):
            best = r
    return best
