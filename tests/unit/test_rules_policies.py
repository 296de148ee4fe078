"""Tag policies: semver ranges (npm semantics, prereleases, `v`), regex ordering, globs, version keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from semver import Version

from shared.domain.rules.policies import (
    GlobPolicy,
    InvalidPolicy,
    RegexPolicy,
    SemverPolicy,
    parse_short_policy,
)
from shared.domain.rules.versions import compare_versions, is_newer_version, is_older_version, parse_semver_tag, semver_key


@pytest.mark.parametrize(
    "rng, tag, expected",
    [
        (">=1.2 <2", "1.2.0", True),
        (">=1.2 <2", "1.9.99", True),
        (">=1.2 <2", "1.1.9", False),
        (">=1.2 <2", "2.0.0", False),
        (">=1.2 <2", "v1.4.2", True),
        (">=1.2 <2", "V1.4.2", True),
        (">= 1.2, < 2", "1.4.2", True),
        ("^1.4", "1.4.0", True),
        ("^1.4", "1.99.0", True),
        ("^1.4", "1.3.9", False),
        ("^1.4", "2.0.0", False),
        ("^0.2.3", "0.2.9", True),
        ("^0.2.3", "0.3.0", False),
        ("^0.0.3", "0.0.3", True),
        ("^0.0.3", "0.0.4", False),
        ("~1.4", "1.4.7", True),
        ("~1.4", "1.5.0", False),
        ("~1.4.2", "1.4.1", False),
        ("~1", "1.9.0", True),
        ("1.x", "1.0.0", True),
        ("1.x", "1.8.3", True),
        ("1.x", "2.0.0", False),
        ("1.2.x", "1.2.5", True),
        ("1.2.x", "1.3.0", False),
        ("1.4.2", "1.4.2", True),
        ("=1.4.2", "1.4.3", False),
        (">1.2", "1.2.9", False),
        (">1.2", "1.3.0", True),
        (">1.2.3", "1.2.3", False),
        ("<=1.2", "1.2.9", True),
        ("<=1.2", "1.3.0", False),
        ("1.2 - 1.4", "1.4.9", True),
        ("1.2 - 1.4", "1.5.0", False),
        ("1.2.3 - 2.3.4", "2.3.4", True),
        ("^1 || ^3", "3.1.0", True),
        ("^1 || ^3", "2.1.0", False),
        ("", "0.0.1", True),
        ("*", "99.0.0", True),
        ("!=1.4.2", "1.4.2", False),
        ("!=1.4.2", "1.4.3", True),
    ],
)
def test_semver_ranges(rng, tag, expected):
    verdict = SemverPolicy(rng).evaluate(tag)
    assert verdict.matched is expected, verdict.reason


@pytest.mark.parametrize(
    "rng, tag, mode, expected",
    [
        (">=1.2 <2", "1.5.0-rc.1", "no", False),  # prereleases are out by default
        (">=1.2 <2", "1.5.0-rc.1", "yes", True),  # ... unless the rule admits them
        (">=1.2 <2", "2.0.0-rc.1", "yes", False),  # `<2` excludes 2.0.0's prereleases
        (">=2.0.0-rc.1", "2.0.0-rc.2", "no", True),  # the range names a prerelease of 2.0.0 (npm)
        (">=2.0.0-rc.1", "2.0.0-rc.0", "no", False),
        (">=2.0.0-rc.1", "2.1.0-rc.1", "no", False),  # ... of 2.0.0 only
        (">=2.0.0-rc.1", "2.1.0", "no", True),
        ("*", "1.0.0-alpha", "yes", True),
        ("*", "1.0.0", "only", False),
        ("*", "1.0.0-alpha", "only", True),
        ("^1.4", "v1.5.0-beta.2", "yes", True),
    ],
)
def test_semver_prereleases(rng, tag, mode, expected):
    verdict = SemverPolicy(rng, mode).evaluate(tag)
    assert verdict.matched is expected, verdict.reason


def test_a_rejected_prerelease_says_how_to_admit_it():
    verdict = SemverPolicy(">=1.0").evaluate("1.5.0-rc.1")
    assert not verdict.matched and "prerelease" in verdict.reason and "prereleases: yes" in verdict.reason


@pytest.mark.parametrize(
    "tag", ["latest", "1.4", "1", "1.4.2.1", "01.4.2", "1.04.2", "1.4.2-01", "vv1.2.3", "1.2.3-", "main-1.2.3", "1.2.3+b"]
)
def test_only_full_semver_tags_are_versions(tag):
    verdict = SemverPolicy("").evaluate(tag)
    assert not verdict.matched
    assert "not a semver version" in verdict.reason


@pytest.mark.parametrize("rng", ["banana", ">=1.2 <", "1.x.3", "<*", "^1.2-rc", "!=1.2", "1.2.3 -", "x" * 300])
def test_broken_ranges_are_errors(rng):
    with pytest.raises(ValueError):
        SemverPolicy(rng)


def test_semver_exposes_version_parts_for_templates():
    verdict = SemverPolicy("").evaluate("v2.3.4-rc.1")
    assert not verdict.matched  # prerelease
    verdict = SemverPolicy("", "yes").evaluate("v2.3.4-rc.1")
    assert dict(verdict.groups) == {"major": "2", "minor": "3", "patch": "4", "prerelease": "rc.1"}


# --------------------------------------------------------------------------- version keys

identifiers = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.from_regex(r"\A[0-9A-Za-z-]*[A-Za-z-][0-9A-Za-z-]*\Z").filter(lambda s: 0 < len(s) <= 12),
)
versions = st.builds(
    lambda M, m, p, pre: Version(M, m, p, ".".join(pre) or None),
    st.integers(0, 10**5), st.integers(0, 10**5), st.integers(0, 10**5),
    st.lists(identifiers, max_size=4),
)


@settings(max_examples=400)
@given(versions, versions)
def test_version_key_order_is_semver_precedence(a, b):
    ka, kb = semver_key(a), semver_key(b)
    assert ((ka > kb) - (ka < kb)) == a.compare(b)


@given(versions)
def test_the_key_of_a_tag_is_the_key_of_its_version(v):
    tag = f"v{v}"
    verdict = SemverPolicy("", "yes").evaluate(tag)
    assert verdict.matched and verdict.version_key == semver_key(v)
    assert parse_semver_tag(str(v)) == v


@settings(max_examples=200)
@given(versions, st.integers(0, 5), st.integers(0, 5))
def test_caret_range_admits_exactly_same_major_at_or_above(v, major, minor):
    if major == 0:
        return  # ^0.x has its own (narrower) rule, covered by the table above
    base = Version(major, minor, 0)
    verdict = SemverPolicy(f"^{major}.{minor}", "yes").evaluate(str(v))
    assert verdict.matched == (v.major == major and v.compare(base) >= 0)


def test_numeric_build_order_beats_alphabetical():
    policy = RegexPolicy(r"^main-(?P<build>\d+)-(?P<sha>[0-9a-f]{7})$", "build", "numerical")
    k999 = policy.evaluate("main-999-abc1234").version_key
    k1000 = policy.evaluate("main-1000-abc1234").version_key
    assert is_newer_version(k1000, k999) and not is_newer_version(k999, k1000)
    alpha = RegexPolicy(r"^main-(?P<build>\d+)-", "build", "alphabetical")
    assert alpha.evaluate("main-999-x").version_key > alpha.evaluate("main-1000-x").version_key


@given(st.integers(0, 10**30), st.integers(0, 10**30))
def test_numeric_keys_follow_numbers(a, b):
    policy = RegexPolicy(r"^b(\d+)$", "1")
    ka, kb = policy.evaluate(f"b{a}").version_key, policy.evaluate(f"b{b}").version_key
    assert ((ka > kb) - (ka < kb)) == ((a > b) - (a < b))


def test_regex_groups_and_non_matches():
    policy = RegexPolicy(r"^pr-(?P<pr>\d+)(?:-(?P<build>\w+))?$", "build")
    assert not policy.evaluate("main-1").matched
    verdict = policy.evaluate("pr-42-x7")
    assert not verdict.matched and "not a number" in verdict.reason
    verdict = policy.evaluate("pr-42")
    assert not verdict.matched and "empty" in verdict.reason
    ok = RegexPolicy(r"^pr-(?P<pr>\d+)$").evaluate("pr-42")
    assert ok.matched and ok.groups["pr"] == "42" and ok.groups["1"] == "42" and ok.version_key == ""


def test_regex_configuration_errors():
    with pytest.raises(ValueError, match="invalid regular expression"):
        RegexPolicy("^main-(")
    with pytest.raises(ValueError, match="not a group"):
        RegexPolicy(r"^main-(?P<build>\d+)$", "nope")
    with pytest.raises(ValueError, match="order"):
        RegexPolicy(r"^(\d+)$", "1", "random")


def test_glob_matches_whole_tag_and_numbers_its_wildcards():
    policy = GlobPolicy("pr-*-?")
    verdict = policy.evaluate("pr-feature-x-1")
    assert verdict.matched and verdict.groups == {"1": "feature-x", "2": "1"}
    assert verdict.version_key == ""
    assert not policy.evaluate("xpr-a-1").matched
    assert GlobPolicy("rc[0-9]").evaluate("rc7").matched
    assert not GlobPolicy("rc[!0-9]").evaluate("rc7").matched
    assert GlobPolicy("a.b").evaluate("a.b").matched and not GlobPolicy("a.b").evaluate("axb").matched


@pytest.mark.parametrize(
    "text, kind, probe, expected",
    [
        ("semver", SemverPolicy, "1.2.3", True),
        ("semver:>=1.2 <2", SemverPolicy, "2.0.0", False),
        ("semver-pre:^1", SemverPolicy, "1.1.0-rc.1", True),
        ("glob:pr-*", GlobPolicy, "pr-7", True),
        (r"regex:^main-(?P<build>\d+)-", RegexPolicy, "main-12-abc", True),
        ("  SEMVER : ^1 ", SemverPolicy, "1.0.0", True),
    ],
)
def test_short_form(text, kind, probe, expected):
    policy = parse_short_policy(text)
    assert isinstance(policy, kind)
    assert policy.evaluate(probe).matched is expected


def test_short_regex_orders_by_a_build_group():
    policy = parse_short_policy(r"regex:^main-(?P<build>\d+)-")
    assert policy.evaluate("main-1000-x").version_key > policy.evaluate("main-999-x").version_key
    assert parse_short_policy(r"regex:^pr-(\d+)$").evaluate("pr-1").version_key == ""


@pytest.mark.parametrize("text", ["", "semver:>=banana", "glob:", "regex:", "regex:(", "calver:2024", "latest"])
def test_short_form_errors(text):
    with pytest.raises(ValueError):
        parse_short_policy(text)


def test_invalid_policy_never_matches_and_says_why():
    verdict = InvalidPolicy("bad tag").evaluate("1.0.0")
    assert not verdict.matched and "bad tag" in verdict.reason


def test_comparisons_across_kinds_or_without_keys_are_unknown():
    s = semver_key(Version(1, 0, 0))
    assert compare_versions(s, "n:0011") is None
    assert compare_versions("", s) is None
    assert is_newer_version("", s) and is_newer_version(s, "") and is_newer_version("n:0011", s)
    assert not is_newer_version(s, s)  # the same version again is not an upgrade
    assert is_older_version(semver_key(Version(0, 9, 0)), s)
    assert not is_older_version("n:0011", s)
