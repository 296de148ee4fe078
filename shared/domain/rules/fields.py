"""Rules-file problems and the field reader every part of the rules parser uses (pure).

A typo in a deploy rule is a silent outage, so validation collects *every* problem rather than
stopping at the first: a `FieldReader` records each one as a `RuleProblem` (file, line, rule,
field) and the parser raises one `RulesError` carrying them all at the end. A value that cannot be
used raises `BadValue` after recording its problem, which unwinds only to the enclosing field
(`attempt`), so the rest of the rule is still checked.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class RuleProblem:
    file: str
    rule: str | None  # rule name, or "#N" (1-based) when it has none; None = not in a rule
    field: str | None  # dotted path inside the rule (or the top level), e.g. "targets[0].app"
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        parts = [where]
        if self.rule is not None:
            parts.append(f"rule {self.rule}")
        if self.field:
            parts.append(self.field)
        return ": ".join(parts) + f": {self.message}"


class RulesError(Exception):
    """A broken rules file. Carries every problem found; `file`/`rule`/`field`/`message` are the
    first one's (for callers that show one)."""

    def __init__(
        self, file: str, rule: str | None = None, field: str | None = None, message: str = "",
        *, problems: list[RuleProblem] | None = None, line: int | None = None,
    ) -> None:
        self.problems = list(problems) if problems else [RuleProblem(file, rule, field, message, line)]
        first = self.problems[0]
        self.file, self.rule, self.field, self.message = first.file, first.rule, first.field, first.message
        count = len(self.problems)
        head = f"{first.file}: {count} problem{'s' if count != 1 else ''} in the rules"
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems))


class BadValue(Exception):
    """One value is wrong; its problem is already recorded. Unwinds to the enclosing field."""


_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+|\d+(?:\.\d+)?")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "": 1}


class FieldReader:
    """Where the parser is (file, rule, line) and what it found wrong so far.

    `rule` and `line` are set by the parser while it reads one rule, so every problem recorded
    meanwhile is attributed to it without passing the rule around."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[RuleProblem] = []
        self.rule: str | None = None
        self.line: int | None = None

    # ---- reporting
    def problem(self, field: str | None, message: str, node: Any = None) -> None:
        line = getattr(node, "line", None) or self.line
        self.problems.append(RuleProblem(self.file, self.rule, field, message, line))

    def bad(self, field: str | None, message: str, node: Any = None) -> BadValue:
        self.problem(field, message, node)
        return BadValue()

    def attempt(self, fn: Callable[[], Any], default: Any = None) -> Any:
        try:
            return fn()
        except BadValue:
            return default

    def keys(self, data: Any, field: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        """`data` as a mapping with only `allowed` keys and every `required` one. Unknown keys are
        reported (with a did-you-mean) but do not stop the reading; missing required ones do."""
        label = field or ("a rule" if self.rule is not None else "the file")
        if not isinstance(data, dict):
            subject = "must" if field else f"{label} must"
            raise self.bad(field, f"{subject} be a mapping (key: value), not {kind(data)}")
        ok = True
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
                self.problem(join(field, str(key)), f"unknown key{hint}", data)
                ok = False
        for key in required:
            if key not in data:
                self.problem(join(field, key), "is required", data)
                ok = False
        if not ok and any(k not in data for k in required):
            raise BadValue()
        return data

    # ---- scalars
    def text(self, value: Any, field: str, node: Any = None, *, empty: bool = False) -> str:
        if isinstance(value, bool) or value is None or not isinstance(value, str):
            # YAML turns 1.10 into a float and `yes` into a bool: say how to keep it text.
            hint = "; quote it" if isinstance(value, (int, float, bool)) else ""
            raise self.bad(field, f"must be text, not {kind(value)}{hint}", node)
        if not empty and not value.strip():
            raise self.bad(field, "must not be empty", node)
        return value.strip()

    def flag(self, value: Any, field: str, node: Any = None) -> bool:
        if not isinstance(value, bool):
            raise self.bad(field, f"must be true or false, not {kind(value)}", node)
        return value

    def integer(self, value: Any, field: str, lo: int, hi: int, node: Any = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.bad(field, f"must be a whole number, not {kind(value)}", node)
        if not lo <= value <= hi:
            raise self.bad(field, f"must be between {lo} and {hi}, not {value}", node)
        return value

    def number(self, value: Any, field: str, *, positive: bool, hi: float, node: Any = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.bad(field, f"must be a number, not {kind(value)}", node)
        if (value <= 0 if positive else value < 0) or value > hi:
            bound = "> 0" if positive else ">= 0"
            raise self.bad(field, f"must be {bound} and at most {hi:g}, not {value}", node)
        return float(value)

    def duration(self, value: Any, field: str, *, positive: bool, hi: float, node: Any = None) -> float:
        """`30s`, `2m`, `1h30m`, `500ms`, or a number of seconds."""
        if isinstance(value, str):
            text = value.strip().lower()
            if not _DURATION.fullmatch(text):
                raise self.bad(field, f"{value!r} is not a duration (e.g. 30s, 2m, 1h30m, 500ms, or seconds)", node)
            value = sum(float(amount) * _SECONDS_PER_UNIT[unit] for amount, unit in _DURATION_PART.findall(text))
        return self.number(value, field, positive=positive, hi=hi, node=node)

    def text_list(self, value: Any, field: str, node: Any = None) -> tuple[str, ...]:
        """A list of texts; one text alone is accepted as a list of one."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.bad(field, f"must be a list, not {kind(value)}", node)
        out = [self.attempt(lambda: self.text(item, f"{field}[{i}]", node), "") for i, item in enumerate(value)]
        return tuple(x for x in out if x)


def join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def kind(value: Any) -> str:
    """What a wrong value is, in the words of someone who wrote YAML (not Python type names)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (true/false)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"{value!r}"
