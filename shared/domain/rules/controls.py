"""A rule's release controls: `approval:`, `promote:` and `notify:` (see docs/rules.md).

    approval: {approvers: [ann@contoso.com], expires: 24h}   # or `approval: true`
    promote: {to: orders-api, after: 30m}                    # or a list of them
    promotion_only: true     # this rule deploys only digests promoted to it, never a push
    notify:
      - {teams: TEAMS_RELEASES_URL, kinds: [awaiting_approval, failed, rolled_back]}  # `on:` would be YAML for true
      - {slack: SLACK_RELEASES_URL}

`notify` names app settings, never URLs: a webhook URL is a credential, and rules (with everything
in them) are copied into every deployment record.
"""

from __future__ import annotations

import re
from typing import Any

from shared.domain.controls import (
    DEFAULT_APPROVAL_EXPIRY_S, DEFAULT_NOTICES, ApprovalPolicy, ChatHook, ChatService, Notice, Promotion,
)
from shared.domain.rules.fields import BadValue, FieldReader
from shared.domain.rules.target_names import is_valid_app_name

CONTROL_KEYS = ("approval", "promote", "notify", "promotion_only")
SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def read_promotion_only(r: FieldReader, value: Any, node: Any) -> bool:
    return r.flag(value, "promotion_only", node)


def read_approval(r: FieldReader, value: Any, node: Any) -> ApprovalPolicy:
    if isinstance(value, bool):
        return ApprovalPolicy(required=value)
    data = r.keys(value, "approval", ("approvers", "expires"))
    approvers = r.text_list(data["approvers"], "approval.approvers", data) if "approvers" in data else ()
    expires = (r.duration(data["expires"], "approval.expires", positive=True, hi=30 * 86400, node=data)
               if "expires" in data else DEFAULT_APPROVAL_EXPIRY_S)
    return ApprovalPolicy(True, approvers, expires)


def read_promote(r: FieldReader, value: Any, node: Any) -> tuple[Promotion, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        field = "promote" if not isinstance(value, list) else f"promote[{i}]"
        try:
            data = r.keys(item, field, ("to", "after", "resource_group"), ("to",))
            to = r.text(data["to"], f"{field}.to", data)
            if not is_valid_app_name(to):
                raise r.bad(f"{field}.to", f"{to!r} is not a Container App name", data)
            after = r.duration(data.get("after", 0), f"{field}.after", positive=False, hi=30 * 86400, node=data)
            group = r.text(data["resource_group"], f"{field}.resource_group", data) if "resource_group" in data else ""
            out.append(Promotion(to, after, group))
        except BadValue:
            continue
    if len(out) != len(items):
        raise BadValue()
    return tuple(out)


def read_notify(r: FieldReader, value: Any, node: Any) -> tuple[ChatHook, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    services = tuple(s.value for s in ChatService)
    for i, item in enumerate(items):
        field = f"notify[{i}]"
        try:
            data = r.keys(item, field, (*services, "kinds"))
            chosen = [s for s in services if s in data]
            if len(chosen) != 1:
                raise r.bad(field, f"needs exactly one of {', '.join(services)} (the app setting holding the URL)", data)
            service = chosen[0]
            setting = r.text(data[service], f"{field}.{service}", data)
            if not SETTING_NAME.fullmatch(setting):
                raise r.bad(f"{field}.{service}", "must name the app setting that holds the webhook URL "
                            "(e.g. TEAMS_RELEASES_URL), never the URL itself: rules are copied into the history", data)
            on = DEFAULT_NOTICES
            if "kinds" in data:
                names = r.text_list(data["kinds"], f"{field}.kinds", data)
                known = tuple(n.value for n in Notice)
                bad = [n for n in names if n not in known]
                if bad or not names:
                    raise r.bad(f"{field}.kinds", f"unknown kinds {bad} (known: {', '.join(known)})", data)
                on = tuple(Notice(n) for n in names)
            out.append(ChatHook(ChatService(service), setting, on))
        except BadValue:
            continue
    if len(out) != len(items):
        raise BadValue()
    return tuple(out)
