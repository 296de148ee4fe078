"""The pure accept/skip decision."""

from datetime import datetime, timezone

from shared.domain.intake_policy import MAX_INFLIGHT_DIGESTS, Candidate, IntakeVerdict, decide
from shared.domain.model import AppState, Target

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)
T = Target("s", "rg", "app")


def cand(id="d1", digest="sha256:a", version="000001", downgrade=False):
    return Candidate(id, T, digest, "1", version, downgrade, "prod")


def test_first_push_is_accepted_and_the_state_says_so():
    d = decide(cand(), None, NOW)
    assert d.verdict == IntakeVerdict.ACCEPT and d.state.etag is None
    assert (d.state.pending_deployment_id, d.state.inflight_digests, d.state.latest_version_key,
            d.state.environment) == ("d1", ("sha256:a",), "000001", "prod")


def test_recorded_duplicate_older_and_downgrade():
    state = decide(cand(), None, NOW).state
    assert decide(cand(), state, NOW).verdict == IntakeVerdict.RECORDED
    assert decide(cand("d2"), state, NOW).verdict == IntakeVerdict.DUPLICATE
    assert decide(cand("d3", "sha256:b", "000000"), state, NOW).verdict == IntakeVerdict.OLDER
    assert decide(cand("d3", "sha256:b", "000000", downgrade=True), state, NOW).verdict == IntakeVerdict.ACCEPT
    newer = decide(cand("d4", "sha256:c", "000002"), state, NOW)
    assert newer.verdict == IntakeVerdict.ACCEPT and newer.state.latest_version_key == "000002"
    unversioned = decide(cand("d5", "sha256:d", ""), newer.state, NOW)
    assert unversioned.verdict == IntakeVerdict.ACCEPT and unversioned.state.latest_version_key == "000002"


def test_inflight_digests_stay_bounded():
    state = AppState(target=T)
    for n in range(MAX_INFLIGHT_DIGESTS + 5):
        state = decide(cand(f"d{n:03}", f"sha256:{n}", ""), state, NOW).state  # ids sort by push time
    assert len(state.inflight_digests) == MAX_INFLIGHT_DIGESTS
    assert state.inflight_digests[-1] == f"sha256:{MAX_INFLIGHT_DIGESTS + 4}"


def test_versions_of_different_kinds_are_not_ordered_against_each_other():
    from shared.domain.rules.versions import numeric_key, parse_semver_tag, semver_key

    semver, build = semver_key(parse_semver_tag("2.0.0")), numeric_key("1234")
    assert semver[:2] != build[:2]  # two kinds: a string comparison would call one of them older
    state = decide(cand("d1", "sha256:a", semver), None, NOW).state
    switched = decide(cand("d2", "sha256:b", build), state, NOW)
    assert switched.verdict == IntakeVerdict.ACCEPT  # not "older": there is no order between the two
    assert switched.state.latest_version_key == build  # the newest accepted push sets the scheme
    older_build = decide(cand("d3", "sha256:c", numeric_key("1200")), switched.state, NOW)
    assert older_build.verdict == IntakeVerdict.OLDER


def test_a_refused_older_version_names_the_newer_version_and_the_rule():
    from shared.domain.rules.versions import numeric_key, parse_semver_tag, semver_key

    def semver(tag, id):
        return Candidate(id, T, f"sha256:{id}", tag, semver_key(parse_semver_tag(tag)), False, "prod",
                         "orders-production")

    state = decide(semver("1.6.0-rc.1", "d1"), None, NOW).state
    refused = decide(semver("1.5.0", "d2"), state, NOW)
    assert refused.verdict == IntakeVerdict.OLDER
    assert "1.5.0 is older than 1.6.0-rc.1, rolling out or queued for app" in refused.reason
    assert "rule orders-production does not allow downgrades" in refused.reason
    live = AppState(target=T, live_deployment_id="n1", live_version_key=numeric_key("42"), live_tag="42")
    numeric = decide(Candidate("n2", T, "sha256:n2", "41", numeric_key("41"), False, "prod"), live, NOW)
    assert numeric.verdict == IntakeVerdict.OLDER
    assert "41 is older than 42, live on app" in numeric.reason and "the rule does not allow" in numeric.reason


def test_version_labels_round_trip_and_foreign_keys_read_as_nothing():
    from shared.domain.intake_policy import version_label
    from shared.domain.rules.versions import alphabetical_key, parse_semver_tag, semver_key

    for tag in ("0.0.0", "1.5.0", "10.20.300", "1.6.0-rc.1", "2.0.0-alpha.beta.12"):
        assert version_label(semver_key(parse_semver_tag(tag))) == tag
    assert version_label(alphabetical_key("main-a")) == "main-a"
    assert [version_label(k) for k in ("", "000001", "s:zz", "s:0011.0012")] == ["", "", "", ""]
