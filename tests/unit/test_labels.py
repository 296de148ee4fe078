"""Properties of the blue/green label arithmetic (`shared.domain.labels`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain import labels as lbl
from shared.domain import traffic

revisions = st.text(alphabet="abcdef", min_size=1, max_size=3).map(lambda s: f"app--{s}")
label_names = st.sampled_from(["blue", "green", "previous", "qa", "canary"])
label_maps = st.dictionaries(label_names, revisions, max_size=5)
weights = st.dictionaries(revisions, st.integers(min_value=0, max_value=100), max_size=5)


@given(label_maps, revisions, st.one_of(st.just(""), revisions))
def test_promotion_puts_production_on_the_new_revision_and_previous_on_the_one_it_left(labels, new, served):
    out = lbl.promoted(labels, new, "blue", "previous", served)
    assert out["blue"] == new
    old = labels.get("blue") or served
    if labels.get("blue") == new:
        assert out == labels
    elif old and old != new:
        assert out["previous"] == old
    else:  # nothing to keep for rollback: previous untouched
        assert out.get("previous") == labels.get("previous")
    # other labels never move
    assert {k: v for k, v in out.items() if k not in ("blue", "previous")} == \
        {k: v for k, v in labels.items() if k not in ("blue", "previous")}
    assert lbl.promoted(out, new, "blue", "previous", served) == out  # idempotent (a redelivered shift)


@given(label_maps, revisions)
def test_a_rollback_undoes_a_promotion(labels, new):
    promoted = lbl.promoted(labels, new, "blue", "previous")
    assert lbl.restored(labels, promoted, ("blue", "previous")) == labels


@given(label_maps, label_names, label_names)
def test_swap_twice_is_the_identity_and_exchanges_revisions(labels, a, b):
    once = lbl.swapped(labels, a, b)
    assert once.get(a) == labels.get(b) and once.get(b) == labels.get(a)
    assert lbl.swapped(once, a, b) == labels


@given(label_maps, label_names, revisions)
def test_move_then_remove(labels, label, rev):
    moved = lbl.moved(labels, label, rev)
    assert moved[label] == rev and len(moved) == len(labels | {label: rev})
    assert label not in lbl.removed(moved, label)


@given(label_maps, weights)
def test_entries_route_exactly_the_weights_with_one_entry_per_label(labels, table):
    table = traffic.serving(table)
    out = lbl.entries(labels, table, weight_on=("blue",))
    assert lbl.routed(out) == table
    assert [e.label for e in out if e.label] == list(labels)
    # a revision's weight sits on one entry only, the production label's when it has it
    for rev, w in table.items():
        carriers = [e for e in out if e.revision == rev and e.weight]
        assert len(carriers) == 1 and carriers[0].weight == w
        if labels.get("blue") == rev:
            assert carriers[0].label == "blue"


def test_labels_mode_refuses_traffic_on_an_unlabelled_revision():
    with pytest.raises(ValueError, match="app--x"):
        lbl.entries({"blue": "app--a"}, {"app--x": 100}, labelled_only=True)
    assert lbl.entries({"blue": "app--a"}, {"app--a": 100}, labelled_only=True) == [
        lbl.LabelEntry("app--a", 100, "blue")]


def test_label_host_is_the_app_host_with_the_label():
    assert lbl.label_fqdn("orders", "green", "orders.happy-sky-1.westeurope.azurecontainerapps.io") == \
        "orders---green.happy-sky-1.westeurope.azurecontainerapps.io"
    assert lbl.label_fqdn("orders", "green", "localhost:8443") == ""
    assert lbl.label_fqdn("orders", "green", "orders.") == ""
