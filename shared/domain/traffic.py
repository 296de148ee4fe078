"""Traffic arithmetic: pure functions over `{revision name: percent}` tables.

Container Apps accepts a traffic table only when its integer weights sum to 100 (a 400 otherwise),
so every function here returns such a table (or an empty one when nothing can serve). Weights are
split with the largest-remainder method so the rounding never loses or invents a percent, and ties
are broken by the order of the input table, so the same input always yields the same table.
"""

from __future__ import annotations

from typing import Mapping

Table = dict[str, int]


def serving(weights: Mapping[str, int]) -> Table:
    """The revisions that receive traffic (weight > 0), in input order."""
    return {name: int(w) for name, w in weights.items() if int(w) > 0}


def scale(weights: Mapping[str, int], total: int) -> Table:
    """Distribute `total` percent over `weights` proportionally (largest remainder).

    Zero/negative weights get nothing; with no positive weight the result is empty. The result's
    weights sum to exactly `total` and keep every revision that had a positive weight, even when its
    share rounds to 0 (so the caller still sees it; `serving()` drops it if needed)."""
    if total < 0 or total > 100:
        raise ValueError(f"total must be 0..100, not {total}")
    positive = serving(weights)
    whole = sum(positive.values())
    if not positive:
        return {}
    shares = {name: w * total / whole for name, w in positive.items()}
    table = {name: int(share) for name, share in shares.items()}
    left = total - sum(table.values())
    order = list(positive)
    # Largest fractional part first; earlier entries win ties (stable, deterministic).
    by_remainder = sorted(order, key=lambda n: (-(shares[n] - table[n]), order.index(n)))
    for name in by_remainder[:left]:
        table[name] += 1
    return table


def pinned(current: Mapping[str, int], new_revision: str) -> Table:
    """The table to send with the PATCH that creates `new_revision`: every revision serving now,
    pinned by name, summing to 100, so the new revision starts at 0 %. Empty when nothing serves
    (then there is nothing to protect and the service routes to the new revision)."""
    before = {n: w for n, w in serving(current).items() if n != new_revision}
    return serving(scale(before, 100))


def canary(previous: Mapping[str, int], new_revision: str, percent: int) -> Table:
    """The new revision at `percent`, the rest shared by what served before in its old proportions.

    With nothing serving before, the new revision takes everything (there is no one to share with)."""
    if not 0 <= percent <= 100:
        raise ValueError(f"canary percent must be 0..100, not {percent}")
    before = {n: w for n, w in serving(previous).items() if n != new_revision}
    if not before:
        return {new_revision: 100}
    table = {n: w for n, w in scale(before, 100 - percent).items() if w > 0}
    if percent > 0:
        table[new_revision] = percent
    if sum(table.values()) != 100:  # all old shares rounded to 0: cannot happen with ints, guard anyway
        table = {new_revision: 100}
    return table


def restore(previous: Mapping[str, int], exclude: str = "") -> Table:
    """The table that returns traffic to the revisions that served before (roll back).
    Empty when there was nothing before (then traffic cannot be taken from `exclude`)."""
    return serving(scale({n: w for n, w in previous.items() if n != exclude}, 100))


def describe(table: Mapping[str, int]) -> str:
    """`app--a 90 %, app--b 10 %` for history messages."""
    if not table:
        return "no traffic"
    return ", ".join(f"{name} {weight} %" for name, weight in table.items())


def is_valid(table: Mapping[str, int]) -> bool:
    return bool(table) and sum(table.values()) == 100 and all(0 <= w <= 100 for w in table.values())

