"""The `rollout:`, `smoke:` and `verify:` parts of the rules file (in `defaults` or in a rule).

Reading is in two steps because a rule's rollout is the defaults' fields overlaid with its own:
`rollout_fields` checks one `rollout:` mapping on its own, `rollout_settings` checks the merged
result as a whole (canary steps, a deadline every rollout can meet) and builds `RolloutSettings`.
"""

from __future__ import annotations

import re
from typing import Any

from shared.domain.analysis import worst_case_s
from shared.domain.credentials import credential_params, is_credential_header
from shared.domain.model import CheckMode, DriftPolicy, RolloutSettings, SmokeCheck, Strategy
from shared.domain.rules.analysis_settings import analysis_settings
from shared.domain.rules.fields import BadValue, FieldReader, kind

DEFAULT_CANARY_STEPS = (10, 50, 100)
# The rollout settings (smoke checks included) are stored in every deployment record, so a
# credential in a check's headers or path would end up in the history (shared.domain.credentials).
STORED_WITH_EVERY_DEPLOYMENT = ("rules (smoke checks included) are stored with every deployment, so secrets "
                                "must not be here (use an endpoint that needs none)")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

ROLLOUT_KEYS = ("strategy", "steps", "bake", "ready_timeout", "keep_previous",
                "allow_single_mode_switch", "deadline", "drift", "warmup", "checks",
                "analysis", "label", "production_label", "previous_label")
LABEL_KEYS = ("label", "production_label", "previous_label")
# The service's rule for label names (lowercase letters, digits, single dashes; starts with a letter).
LABEL_NAME = re.compile(r"[a-z]([a-z0-9-]{0,62}[a-z0-9])?")
CHECK_KEYS = ("name", "method", "path", "expect_status", "body_contains", "json", "headers",
              "timeout", "max_latency_ms", "retries", "backoff", "consecutive_passes")


def rollout_fields(r: FieldReader, value: Any, field: str) -> dict[str, Any]:
    """One `rollout:` mapping -> `RolloutSettings` keyword arguments (only those it sets)."""
    data = r.keys(value, field, ROLLOUT_KEYS)
    out: dict[str, Any] = {}
    f = lambda key: f"{field}.{key}"  # noqa: E731
    if "strategy" in data:
        s = data["strategy"]
        if s not in ("all-at-once", "canary", "blue-green"):
            r.problem(f("strategy"), f"must be all-at-once, canary or blue-green, not {s!r}", data)
        else:
            out["strategy"] = Strategy(s)
    if "steps" in data:
        out["steps"] = r.attempt(lambda: _steps(r, data["steps"], f("steps"), data))
    if "bake" in data:
        out["bake_s"] = r.attempt(lambda: r.duration(data["bake"], f("bake"), positive=False, hi=86400, node=data))
    if "ready_timeout" in data:
        out["ready_timeout_s"] = r.attempt(lambda: r.duration(data["ready_timeout"], f("ready_timeout"), positive=True, hi=86400, node=data))
    if "deadline" in data:
        out["deadline_s"] = r.attempt(lambda: r.duration(data["deadline"], f("deadline"), positive=True, hi=7 * 86400, node=data))
    if "keep_previous" in data:
        out["keep_previous"] = r.attempt(lambda: r.integer(data["keep_previous"], f("keep_previous"), 0, 10, data))
    if "allow_single_mode_switch" in data:
        out["allow_single_mode_switch"] = r.attempt(lambda: r.flag(data["allow_single_mode_switch"], f("allow_single_mode_switch"), data))
    if "drift" in data:
        d = data["drift"]
        if d not in ("record", "repair"):
            r.problem(f("drift"), f"must be record or repair, not {d!r}", data)
        else:
            out["drift"] = DriftPolicy(d)
    if "warmup" in data:
        out["warmup_s"] = r.attempt(lambda: r.duration(data["warmup"], f("warmup"), positive=False, hi=600, node=data))
    if "checks" in data:
        c = data["checks"]
        if c not in [m.value for m in CheckMode]:
            r.problem(f("checks"), f"must be auto, http or none, not {c!r}", data)
        else:
            out["checks"] = CheckMode(c)
    for key in LABEL_KEYS:
        if key in data:
            out[key] = r.attempt(lambda key=key: _label(r, data[key], f(key), data))
    if "analysis" in data:
        out["analysis"] = r.attempt(lambda: analysis_settings(r, data["analysis"], f("analysis")), BadValue)
    if any(v is BadValue or (v is None and k != "analysis") for k, v in out.items()):
        raise BadValue()
    return out


def _label(r: FieldReader, value: Any, field: str, node: Any) -> str:
    name = r.text(value, field, node)
    if not LABEL_NAME.fullmatch(name) or "--" in name:
        raise r.bad(field, f"{name!r} is not a label name (lowercase letters, digits and single '-', starting "
                           "with a letter, at most 64 characters)", node)
    return name


def _steps(r: FieldReader, value: Any, field: str, node: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise r.bad(field, "must be a list of traffic percentages, e.g. [10, 50, 100]", node)
    steps = [r.integer(v, f"{field}[{i}]", 1, 100, node) for i, v in enumerate(value)]
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise r.bad(field, f"must increase strictly, not {steps}", node)
    if steps[-1] != 100:
        raise r.bad(field, f"must end at 100 (the last step takes all traffic), not {steps[-1]}", node)
    return tuple(steps)


def rollout_settings(r: FieldReader, fields: dict[str, Any], smoke: Any, verify: Any, field: str) -> RolloutSettings:
    """The merged rollout fields and checks (None = not set: the model's default) as settings."""
    fields = dict(fields)
    strategy = fields.get("strategy", Strategy.ALL_AT_ONCE)
    if strategy is Strategy.CANARY:
        fields.setdefault("steps", DEFAULT_CANARY_STEPS)
        if len(fields["steps"]) < 2:
            raise r.bad(f"{field}.steps", "a canary needs at least one step below 100, e.g. [10, 50, 100]")
    elif fields.get("steps", (100,)) != (100,):
        raise r.bad(f"{field}.steps", "traffic steps need strategy: canary (all-at-once moves 100% at once)")
    names = [fields.get(k, RolloutSettings.__dataclass_fields__[k].default) for k in LABEL_KEYS]
    if len(set(names)) != len(names):
        raise r.bad(f"{field}.label", f"label, production_label and previous_label must differ, not {names}")
    if smoke is not None:
        fields["smoke"] = tuple(smoke)
    if verify is not None:
        fields["verify"] = tuple(verify)
    settings = RolloutSettings(**fields)
    needed = settings.ready_timeout_s + settings.bake_s * max(0, len(settings.steps) - 1)
    what = "ready_timeout + bake per step"
    if settings.analysis is not None:
        needed += worst_case_s(settings.analysis) * len(settings.steps)
        what += " + analysis windows and ingestion delay per step"
    if settings.deadline_s < needed:
        raise r.bad(
            f"{field}.deadline",
            f"{settings.deadline_s:g}s is shorter than {what} ({needed:g}s): every rollout would miss it",
        )
    return settings


def checks(r: FieldReader, value: Any, field: str, kind_name: str) -> tuple[SmokeCheck, ...]:
    """A `smoke:` or `verify:` list (`kind_name` names unnamed checks: smoke-1, verify-2...)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise r.bad(field, f"must be a list of checks, not {kind(value)}")
    out: list[SmokeCheck] = []
    names: set[str] = set()
    failed = False
    for i, item in enumerate(value):
        try:
            check = _one_check(r, item, f"{field}[{i}]", f"{kind_name}-{i + 1}")
        except BadValue:
            failed = True
            continue
        if check.name in names:
            r.problem(f"{field}[{i}].name", f"duplicate check name {check.name!r}", item)
            failed = True
        names.add(check.name)
        out.append(check)
    if failed:
        raise BadValue()
    return tuple(out)


def _one_check(r: FieldReader, item: Any, field: str, default_name: str) -> SmokeCheck:
    data = r.keys(item, field, CHECK_KEYS)
    f = lambda key: f"{field}.{key}"  # noqa: E731
    kw: dict[str, Any] = {"name": default_name}
    get = r.attempt
    if "name" in data:
        kw["name"] = get(lambda: r.text(data["name"], f("name"), data), default_name)
    if "method" in data:
        method = get(lambda: r.text(data["method"], f("method"), data), "GET").upper()
        if method not in HTTP_METHODS:
            r.problem(f("method"), f"{method!r} is not an HTTP method", data)
        kw["method"] = method
    if "path" in data:
        path = get(lambda: r.text(data["path"], f("path"), data), "/")
        # Appended to the revision's own URL: a full URL or '//host' would probe another host.
        if not path.startswith("/") or path.startswith("//") or re.search(r"\s", path):
            r.problem(f("path"), f"{path!r} must be a path starting with '/' (the host is the revision's)", data)
        elif credential_params(path):
            names = ", ".join(dict.fromkeys(credential_params(path)))
            r.problem(f("path"), f"query parameter {names} looks like a credential; {STORED_WITH_EVERY_DEPLOYMENT}",
                      data)
        kw["path"] = path
    if "expect_status" in data:
        raw = data["expect_status"]
        codes = raw if isinstance(raw, list) else [raw]
        kw["expect_status"] = tuple(
            get(lambda: r.integer(c, f("expect_status"), 100, 599, data), 200) for c in codes
        )
        if not codes:
            r.problem(f("expect_status"), "names no status", data)
    if "body_contains" in data:
        kw["body_contains"] = get(lambda: r.text(data["body_contains"], f("body_contains"), data))
    if "json" in data:
        try:
            js = r.keys(data["json"], f("json"), ("field", "equals"), ("field", "equals"))
            kw["json_field"] = r.text(js["field"], f("json.field"), js)
            if isinstance(js["equals"], (dict, list)):
                r.problem(f("json.equals"), "must be a single value (text, number, true/false, null)", js)
            kw["json_equals"] = js["equals"]
        except BadValue:
            pass
    if "headers" in data:
        headers = _headers(r, data["headers"], f("headers"), data)
        if headers is not None:
            kw["headers"] = headers
    if "timeout" in data:
        kw["timeout_s"] = get(lambda: r.duration(data["timeout"], f("timeout"), positive=True, hi=120, node=data), 5.0)
    if "max_latency_ms" in data:
        kw["max_latency_ms"] = get(lambda: r.number(data["max_latency_ms"], f("max_latency_ms"), positive=True, hi=120_000, node=data))
    if "retries" in data:
        kw["retries"] = get(lambda: r.integer(data["retries"], f("retries"), 0, 50, data), 3)
    if "backoff" in data:
        kw["backoff_s"] = get(lambda: r.duration(data["backoff"], f("backoff"), positive=False, hi=300, node=data), 1.0)
    if "consecutive_passes" in data:
        kw["consecutive_passes"] = get(lambda: r.integer(data["consecutive_passes"], f("consecutive_passes"), 1, 100, data), 1)
    return SmokeCheck(**kw)


def _headers(r: FieldReader, headers: Any, field: str, node: Any) -> tuple[tuple[str, str], ...] | None:
    """The good (name, value) pairs; each bad one is reported. None when `headers` is no mapping."""
    if not isinstance(headers, dict):
        r.problem(field, f"must be a mapping of header: value, not {kind(headers)}", node)
        return None
    pairs = []
    for name, val in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            r.problem(field, f"{name!r} is not a header name", node)
        elif is_credential_header(name):
            r.problem(f"{field}.{name}", f"looks like a credential; {STORED_WITH_EVERY_DEPLOYMENT}", node)
        elif not isinstance(val, str):
            r.problem(f"{field}.{name}", f"must be text, not {kind(val)}; quote it", node)
        else:
            pairs.append((name, val))
    return tuple(pairs)
