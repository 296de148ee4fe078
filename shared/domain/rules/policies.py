"""Tag policies: which tags a rule accepts, and in what order their versions go.

Three policies, as the peers offer them (Keel, Flux ImagePolicy, Argo CD Image Updater):
- `SemverPolicy`: MAJOR.MINOR.PATCH tags (a leading `v` accepted) within an npm-style range
  (`>=1.2 <2`, `^1.4`, `~1.4`, `1.x`, `1.2 - 1.4`, `a || b`). Prereleases are admitted only when
  the rule says so (`prereleases: yes|only`) or, as npm does, when a comparator of the range
  names a prerelease of the same MAJOR.MINOR.PATCH (`>=2.0.0-rc.1`).
- `RegexPolicy`: tags matching a regular expression; named (and numbered) groups feed target
  templates, and one group may order versions, numerically (`main-1234-abc1234`) or alphabetically.
- `GlobPolicy`: shell-style patterns (`pr-*`); wildcards are groups `1`, `2`... for templates;
  globs have no version order.

Each accepted tag gets a `version_key` (see `versions`: keys, comparisons and semver ranges).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from shared.domain.rules.versions import alphabetical_key, numeric_key, parse_range, parse_semver_tag, semver_key


@dataclass(frozen=True)
class TagMatch:
    """The verdict of a policy on one tag, with the reason in words (shown by `rules explain`)."""

    matched: bool
    reason: str
    version_key: str = ""
    groups: Mapping[str, str] = field(default_factory=dict)


class TagPolicy(Protocol):
    def evaluate(self, tag: str) -> TagMatch: ...

    def describe(self) -> str: ...

    def group_names(self) -> frozenset[str]:
        """Names usable as `{group:NAME}` in target templates."""
        ...


# --------------------------------------------------------------------------- semver

PRERELEASE_MODES = ("no", "yes", "only")


@dataclass(frozen=True)
class SemverPolicy:
    range: str = ""  # "" / "*" = any version
    prereleases: str = "no"  # no | yes | only
    _sets: tuple = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.prereleases not in PRERELEASE_MODES:
            raise ValueError(f"prereleases must be one of {', '.join(PRERELEASE_MODES)}")
        object.__setattr__(self, "_sets", parse_range(self.range))

    def describe(self) -> str:
        rng = self.range.strip() or "*"
        extra = {"no": "releases only", "yes": "prereleases too", "only": "prereleases only"}
        return f"semver {rng} ({extra[self.prereleases]})"

    def group_names(self) -> frozenset[str]:
        return frozenset({"major", "minor", "patch", "prerelease"})

    def evaluate(self, tag: str) -> TagMatch:
        v = parse_semver_tag(tag)
        if v is None:
            return TagMatch(False, f"tag {tag!r} is not a semver version (MAJOR.MINOR.PATCH)")
        groups = {
            "major": str(v.major), "minor": str(v.minor), "patch": str(v.patch),
            "prerelease": str(v.prerelease or ""),
        }
        if self.prereleases == "only" and not v.prerelease:
            return TagMatch(False, f"{v} is a release; this rule takes prereleases only")
        for comparators in self._sets:
            if not all(c.test(v) for c in comparators):
                continue
            if v.prerelease and self.prereleases == "no" and not any(
                c.explicit_pre and c.version.to_tuple()[:3] == v.to_tuple()[:3] for c in comparators
            ):
                return TagMatch(
                    False,
                    f"{v} is a prerelease; not admitted (set prereleases: yes, or name a "
                    f"prerelease of {v.major}.{v.minor}.{v.patch} in the range)",
                )
            return TagMatch(True, f"{v} satisfies {self.describe()}", semver_key(v), groups)
        return TagMatch(False, f"{v} is outside the range {self.range.strip() or '*'}")


# --------------------------------------------------------------------------- regex and glob

ORDERS = ("numerical", "alphabetical")


@dataclass(frozen=True)
class RegexPolicy:
    pattern: str
    sort_group: str | None = None  # group name or number that orders versions
    order: str = "numerical"
    _re: re.Pattern = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        object.__setattr__(self, "_re", compiled)
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}")
        if self.sort_group is not None and self.sort_group not in self.group_names():
            raise ValueError(
                f"sort group {self.sort_group!r} is not a group of the pattern "
                f"(groups: {', '.join(sorted(self.group_names())) or 'none'})"
            )

    def group_names(self) -> frozenset[str]:
        numbered = {str(i) for i in range(1, self._re.groups + 1)}
        return frozenset(set(self._re.groupindex) | numbered)

    def describe(self) -> str:
        text = f"regex {self.pattern}"
        if self.sort_group:
            text += f" (ordered by group {self.sort_group}, {self.order})"
        return text

    def evaluate(self, tag: str) -> TagMatch:
        m = self._re.search(tag)
        if not m:
            return TagMatch(False, f"tag {tag!r} does not match regex {self.pattern}")
        groups = {str(i): m.group(i) or "" for i in range(1, self._re.groups + 1)}
        groups.update({k: v or "" for k, v in m.groupdict().items()})
        key = ""
        if self.sort_group:
            g = int(self.sort_group) if self.sort_group.isdigit() else self.sort_group
            value = m.group(g)
            if not value:
                return TagMatch(False, f"group {self.sort_group!r} is empty in tag {tag!r}")
            if self.order == "numerical":
                if not value.isascii() or not value.isdigit():
                    return TagMatch(
                        False, f"group {self.sort_group!r} of tag {tag!r} is {value!r}, not a number"
                    )
                key = numeric_key(value)
            else:
                key = alphabetical_key(value)
        return TagMatch(True, f"tag {tag!r} matches {self.describe()}", key, groups)


def _glob_regex(pattern: str) -> str:
    """Shell glob -> regex where each `*` / `?` is a numbered group (for `{group:1}` templates)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append("(.*)")
        elif ch == "?":
            out.append("(.)")
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class GlobPolicy:
    pattern: str
    _re: re.Pattern = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not self.pattern:
            raise ValueError("glob pattern is empty")
        try:
            object.__setattr__(self, "_re", re.compile(_glob_regex(self.pattern), re.DOTALL))
        except re.error as exc:
            raise ValueError(f"invalid glob {self.pattern!r}: {exc}") from exc

    def group_names(self) -> frozenset[str]:
        return frozenset(str(i) for i in range(1, self._re.groups + 1))

    def describe(self) -> str:
        return f"glob {self.pattern}"

    def evaluate(self, tag: str) -> TagMatch:
        m = self._re.fullmatch(tag)
        if not m:
            return TagMatch(False, f"tag {tag!r} does not match glob {self.pattern}")
        groups = {str(i): v for i, v in enumerate(m.groups(), start=1)}
        return TagMatch(True, f"tag {tag!r} matches glob {self.pattern} (no version order)", "", groups)


@dataclass(frozen=True)
class InvalidPolicy:
    """Stands in for a policy that could not be parsed (a bad resource tag): never matches, says why."""

    problem: str

    def group_names(self) -> frozenset[str]:
        return frozenset()

    def describe(self) -> str:
        return f"invalid ({self.problem})"

    def evaluate(self, tag: str) -> TagMatch:
        return TagMatch(False, f"tag policy is invalid: {self.problem}")


def glob_match(pattern: str, text: str) -> bool:
    """Case-sensitive shell glob (used for repositories and ignore lists); `*` crosses '/'."""
    return re.fullmatch(_glob_regex(pattern), text, re.DOTALL) is not None


def parse_short_policy(text: str) -> TagPolicy:
    """The short form used in the `acr-deploy.tags` resource tag (and accepted in rules files):
    `semver`, `semver:RANGE`, `semver-pre:RANGE` (prereleases too), `glob:PATTERN`, `regex:PATTERN`
    (ordered numerically by a group named `build` when the pattern has one). Raises ValueError."""
    text = (text or "").strip()
    kind, _, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind == "semver":
        return SemverPolicy(arg.strip())
    if kind == "semver-pre":
        return SemverPolicy(arg.strip(), prereleases="yes")
    if kind == "glob":
        return GlobPolicy(arg.strip())
    if kind == "regex":
        if not arg:
            raise ValueError("regex: needs a pattern")
        probe = RegexPolicy(arg)
        return RegexPolicy(arg, "build") if "build" in probe.group_names() else probe
    raise ValueError(
        f"{text!r} is not a tag policy (expected semver, semver:RANGE, semver-pre:RANGE, "
        "glob:PATTERN or regex:PATTERN)"
    )
