"""The history's truth under disorder: seeded random scenarios, invariants checked at quiescence.

A few seeds run in `make test`; `make soak` runs many (ACR_DEPLOY_SOAK_SEEDS) and prints the figures.
The scenario and the invariants are in `tests/scenario/invariants.py`.
"""

from __future__ import annotations

import os

import pytest

from tests.scenario.driver import QueueDriver
from tests.scenario.invariants import Killer, Report, make_script, run_script

SEEDS = int(os.environ.get("ACR_DEPLOY_SOAK_SEEDS", "0")) or None
FIRST_SEED = int(os.environ.get("ACR_DEPLOY_SOAK_FIRST_SEED", "1"))
QUICK_SEEDS = [3, 11, 29]


def _seeds() -> list[int]:
    return list(range(FIRST_SEED, FIRST_SEED + SEEDS)) if SEEDS else QUICK_SEEDS


@pytest.mark.slow
@pytest.mark.parametrize("seed", _seeds())
def test_history_matches_what_serves(world, seed, request):
    apps = (world.seed_app("inv"), world.seed_app("canary"))
    script = make_script(seed, apps)
    killer = Killer(seed, script.kill_rate)
    world.killer = killer
    c = world.container
    # The world's worker (its recovery of start messages that outran their record included), with
    # deaths injected after records and after Azure changes.
    c.rollout = c.rollout.with_ports(apps=killer.wrap(c.container_apps), on_saved=killer.on_saved)
    report = run_script(world, script, lambda: QueueDriver(c.queue, visibility_timeout=1))
    reports: list[Report] = request.config.__dict__.setdefault("acr_invariant_reports", [])
    reports.append(report)  # printed by tests/scenario/conftest.py's terminal summary
    assert not report.violations, (
        f"seed {seed}: {len(report.violations)} violation(s)\n  " + "\n  ".join(report.violations)
        + "\n" + "\n".join(f"{a}:\n{world.story_of_app(a)}" for a in apps))
