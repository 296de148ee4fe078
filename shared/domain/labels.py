"""Label arithmetic for blue/green: pure functions over `{label: revision name}` maps.

A Container App's traffic table names revisions and, optionally, a label per entry; a label is on
one revision at a time and gives that revision its own URL, `<app>---<label>.<environment domain>`.
Blue/green moves labels instead of (or as well as) weights: the new revision is tested on its
candidate label's URL, then the production label moves to it and the revision it leaves keeps the
previous label, so a rollback is one more label move. Every function returns a new map; the input
order is kept (new labels go last), so the same input always yields the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

LabelMap = dict[str, str]  # label -> revision name


@dataclass(frozen=True)
class LabelEntry:
    """One entry of a traffic table as the service takes it (`label` empty: an unlabelled entry)."""

    revision: str
    weight: int
    label: str = ""


def moved(labels: Mapping[str, str], label: str, revision: str) -> LabelMap:
    """`label` on `revision` (added when absent, moved from wherever it was)."""
    out = dict(labels)
    out[label] = revision
    return out


def removed(labels: Mapping[str, str], *names: str) -> LabelMap:
    return {label: rev for label, rev in labels.items() if label not in names}


def promoted(labels: Mapping[str, str], revision: str, production: str, previous: str,
             served_before: str = "") -> LabelMap:
    """The production label on `revision`; the revision it leaves (without a production label yet:
    `served_before`, the one that served) keeps `previous` (for an instant rollback). When
    production already is on `revision`, nothing moves (idempotent)."""
    if labels.get(production) == revision:
        return dict(labels)
    out = moved(labels, production, revision)
    old = labels.get(production) or served_before
    if old and old != revision:
        out = moved(out, previous, old)
    return out


def swapped(labels: Mapping[str, str], a: str, b: str) -> LabelMap:
    """`a` and `b` exchange revisions (`az containerapp revision label swap`); a label that is
    absent makes the other one absent after the swap."""
    out = {label: rev for label, rev in labels.items() if label not in (a, b)}
    if b in labels:
        out[a] = labels[b]
    if a in labels:
        out[b] = labels[a]
    return out


def restored(before: Mapping[str, str], now: Mapping[str, str], keep: Sequence[str]) -> LabelMap:
    """Roll back: the labels named in `keep` go back to where they were `before` (absent before:
    removed); every other label stays as it is `now`."""
    out = {label: rev for label, rev in now.items() if label not in keep}
    out.update({label: before[label] for label in keep if label in before})
    return out


def entries(labels: Mapping[str, str], weights: Mapping[str, int], weight_on: Sequence[str] = (),
            labelled_only: bool = False) -> list[LabelEntry]:
    """The traffic table for `labels` and `weights` ({revision: percent}): one entry per label, a
    revision's weight on exactly one of its labels (the first of `weight_on` it carries, else its
    first label), unlabelled entries for weighted revisions without a label. Weights travel with
    their entry: in the service's `Labels` mode a label moved later takes its weight along, so the
    production label is the one that must carry it. `labelled_only` (the `Labels` mode): a weighted
    revision without a label is an error, not an unlabelled entry."""
    carrier: dict[str, str] = {}
    for label in [*[w for w in weight_on if w in labels], *labels]:
        carrier.setdefault(labels[label], label)
    out = [LabelEntry(rev, int(weights.get(rev, 0)) if carrier[rev] == label else 0, label)
           for label, rev in labels.items()]
    unlabelled = [rev for rev, w in weights.items() if int(w) > 0 and rev not in carrier]
    if unlabelled and labelled_only:
        raise ValueError(f"revisions without a label cannot receive traffic in Labels mode: {', '.join(unlabelled)}")
    out.extend(LabelEntry(rev, int(weights[rev])) for rev in unlabelled)
    return out


def routed(table: Sequence[LabelEntry]) -> dict[str, int]:
    """{revision: percent} a table routes (weights > 0), in table order."""
    out: dict[str, int] = {}
    for entry in table:
        if entry.weight > 0:
            out[entry.revision] = out.get(entry.revision, 0) + entry.weight
    return out


def label_fqdn(app: str, label: str, app_fqdn: str) -> str:
    """The label's own host on the service: `<app>---<label>.<environment domain>`, the domain being
    what follows `<app>.` in the app's ingress host. Empty when the app host is not of that form."""
    prefix = f"{app}."
    if not app_fqdn.startswith(prefix) or len(app_fqdn) == len(prefix):
        return ""
    return f"{app}---{label}.{app_fqdn[len(prefix):]}"


def describe(labels: Mapping[str, str]) -> str:
    """`blue → app--v2, previous → app--v1` for history messages."""
    if not labels:
        return "no labels"
    return ", ".join(f"{label} → {rev}" for label, rev in labels.items())
