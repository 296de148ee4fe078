"""Tag versions: order-preserving version keys, and npm-style semver ranges (pure).

Each tag a policy accepts gets a `version_key`: a string whose plain string order is the version
order, so the history can store it and intake can refuse a downgrade without knowing the policy.
Keys carry a kind prefix (`s:` semver, `n:` numeric, `a:` alphabetical); keys of different
kinds, or an empty key, are not comparable (`compare_versions` -> None).

`parse_range` turns an npm-style range (`>=1.2 <2`, `^1.4`, `~1.4`, `1.x`, `1.2 - 1.4`, `a || b`)
into plain comparators; `SemverPolicy` in `policies` applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from semver import Version

# Docker tags cannot contain '+', so build metadata never appears; numeric parts have no leading zeros.
_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
SEMVER_TAG = re.compile(
    rf"^[vV]?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-({_IDENT}(?:\.{_IDENT})*))?$"
)


# --------------------------------------------------------------------------- version keys


def _num(value: int | str) -> str:
    """Self-delimiting, order-preserving number: 3-digit length, then the digits (no leading zeros)."""
    digits = str(int(value))
    return f"{len(digits):03d}{digits}"


def semver_key(v: Version) -> str:
    """Order-preserving key: key(a) < key(b) iff a < b by SemVer 2.0 precedence (build ignored).

    After MAJOR.MINOR.PATCH a release gets '~' and a prerelease '-' (so every prerelease sorts
    before its release); prerelease identifiers are numeric ('0' + number, lower) or alphanumeric
    ('1' + text), each closed by '!', which sorts below every identifier character, so a shorter
    identifier list sorts first when the common part is equal."""
    key = f"s:{_num(v.major)}.{_num(v.minor)}.{_num(v.patch)}"
    if not v.prerelease:
        return key + "~"
    parts = []
    for ident in str(v.prerelease).split("."):
        parts.append(("0" + _num(ident) if ident.isdigit() else "1" + ident) + "!")
    return key + "-" + "".join(parts)


def numeric_key(digits: str) -> str:
    return "n:" + _num(digits)


def alphabetical_key(text: str) -> str:
    return "a:" + text


def compare_versions(a: str, b: str) -> int | None:
    """-1/0/1 when both keys are of one kind; None when either is empty or the kinds differ."""
    if not a or not b or a[:2] != b[:2]:
        return None
    return (a > b) - (a < b)


def is_newer_version(candidate_key: str, current_key: str) -> bool:
    """True when `candidate_key` may replace `current_key` without going backwards: it is strictly
    newer, or the two cannot be compared (no order known: glob tags, a rule whose policy changed).
    Equal versions are not newer (re-pushing 1.4.2 is not an upgrade)."""
    order = compare_versions(candidate_key, current_key)
    return order is None or order > 0


def is_older_version(candidate_key: str, current_key: str) -> bool:
    """True only when the candidate is known to be older (a downgrade)."""
    return compare_versions(candidate_key, current_key) == -1


def parse_semver_tag(tag: str) -> Version | None:
    m = SEMVER_TAG.match(tag)
    if not m:
        return None
    return Version(int(m[1]), int(m[2]), int(m[3]), m[4] or None)


# --------------------------------------------------------------------------- semver ranges

_PARTIAL = re.compile(
    r"^[vV]?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?$"
)
_COMPARATOR = re.compile(r"^(?P<op>\^|~>|~|>=|<=|>|<|==|=|!=)?(?P<ver>.*)$")


@dataclass(frozen=True)
class _Comparator:
    op: str  # >=, >, <, <=, =, !=
    version: Version
    explicit_pre: bool = False  # the range's author wrote this prerelease (admits that triple's prereleases)

    def test(self, v: Version) -> bool:
        c = v.compare(self.version)
        return {
            ">=": c >= 0, ">": c > 0, "<": c < 0, "<=": c <= 0, "=": c == 0, "!=": c != 0
        }[self.op]


def _floor(major: int, minor: int = 0, patch: int = 0) -> Version:
    """The lowest version of a triple, below all its prereleases (npm's `-0`)."""
    return Version(major, minor, patch, "0")


def _floor_after(major: int, minor: int | None) -> Version:
    """The lowest version above a partial one: `1` -> 2.0.0-0, `1.4` -> 1.5.0-0. A partial version
    is a range (`<=1.4` means `<1.5.0-0`, `>1.4` means `>=1.5.0-0`), so its bounds are floors."""
    return _floor(major + 1) if minor is None else _floor(major, minor + 1)


def _partial(text: str) -> tuple[int | None, int | None, int | None, str | None]:
    m = _PARTIAL.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a version (MAJOR[.MINOR[.PATCH]][-PRERELEASE])")
    parts: list[int | None] = []
    for name in ("major", "minor", "patch"):
        raw = m[name]
        parts.append(None if raw is None or raw in "xX*" else int(raw))
    major, minor, patch = parts
    # "1.x.3" is nonsense: once a part is a wildcard, the rest must be too.
    if (major is None and (minor is not None or patch is not None)) or (
        minor is None and patch is not None
    ):
        raise ValueError(f"{text!r}: a wildcard may only be followed by wildcards")
    if m["pre"] and patch is None:
        raise ValueError(f"{text!r}: a prerelease needs a full MAJOR.MINOR.PATCH")
    return major, minor, patch, m["pre"]


def _desugar(op: str, text: str) -> list[_Comparator]:
    """One range token -> plain comparators, following npm's semver semantics."""
    if not text:
        raise ValueError(f"'{op}' needs a version after it")
    major, minor, patch, pre = _partial(text)
    if major is None:  # *, x
        if op in (">", "<", "!="):
            raise ValueError(f"'{op}{text}' matches nothing")
        return []
    full = patch is not None
    exact = Version(major, minor or 0, patch or 0, pre)
    lowest = exact if full else _floor(major, minor or 0)  # the lowest version the token names
    E = bool(pre)
    if op in ("", "=", "=="):
        if full:
            return [_Comparator("=", exact, E)]
        return [_Comparator(">=", lowest), _Comparator("<", _floor_after(major, minor))]
    if op == "!=":
        if not full:
            raise ValueError(f"'!={text}' needs a full version")
        return [_Comparator("!=", exact, E)]
    if op == "^":
        low = _Comparator(">=", lowest, E)
        if major > 0 or minor is None:
            return [low, _Comparator("<", _floor(major + 1))]
        if minor > 0 or not full:
            return [low, _Comparator("<", _floor(0, minor + 1))]
        return [low, _Comparator("<", _floor(0, 0, patch + 1))]
    if op in ("~", "~>"):
        return [_Comparator(">=", lowest, E), _Comparator("<", _floor_after(major, minor))]
    if op == ">=":
        return [_Comparator(">=", lowest, E)]
    if op == ">":
        if full:
            return [_Comparator(">", exact, E)]
        return [_Comparator(">=", _floor_after(major, minor))]
    if op == "<":
        return [_Comparator("<", lowest, E)]
    if op == "<=":
        if full:
            return [_Comparator("<=", exact, E)]
        return [_Comparator("<", _floor_after(major, minor))]
    raise ValueError(f"unknown operator {op!r}")  # pragma: no cover - the regex admits no other


def parse_range(text: str) -> tuple[tuple[_Comparator, ...], ...]:
    """`'>=1.2 <2 || ^3'` -> alternatives of comparator sets. Raises ValueError with the reason."""
    text = (text or "").strip()
    if len(text) > 256:
        raise ValueError("range is longer than 256 characters")
    alternatives = []
    for alt in text.split("||"):
        alt = alt.replace(",", " ").strip()
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alt)
        if hyphen:
            comparators = _desugar(">=", hyphen[1]) + _desugar("<=", hyphen[2])
        else:
            # ">= 1.2" is written with a space as often as without.
            alt = re.sub(r"(\^|~>|~|>=|<=|>|<|==|=|!=)\s+", r"\1", alt)
            comparators = []
            for token in alt.split():
                m = _COMPARATOR.match(token)
                assert m  # the pattern accepts any string
                comparators += _desugar(m["op"] or "", m["ver"])
        alternatives.append(tuple(comparators))
    return tuple(alternatives)
