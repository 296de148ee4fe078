"""Release controls a rule puts on its deployments (pure): approval, freeze windows, promotion to
another app, chat notifications. They travel inside `RolloutSettings.controls`, so a deployment
carries the controls it was planned with and the worker needs nothing else to honour them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from shared.domain.freeze import FreezeWindow

DEFAULT_APPROVAL_EXPIRY_S = 24 * 3600.0
PROMOTION_SOURCE = "acr-deploy/promotion/"  # event_source prefix of the pushes promotion plans


@dataclass(frozen=True)
class ApprovalPolicy:
    required: bool = False
    approvers: tuple[str, ...] = ()  # empty: whoever may call the API; else these names (case-insensitive)
    expires_s: float = DEFAULT_APPROVAL_EXPIRY_S  # after the request: the deployment ends, nothing shifted

    def may_approve(self, who: str) -> bool:
        return not self.approvers or who.strip().lower() in {a.lower() for a in self.approvers}


@dataclass(frozen=True)
class Promotion:
    """After a deployment of this rule succeeded and soaked `after_s`, deploy its digest to `to`."""

    to: str  # app name
    after_s: float = 0.0
    resource_group: str = ""  # "" = the source app's


class Notice(str, Enum):
    """What a person acts on; the kinds a chat hook may subscribe to."""

    AWAITING_APPROVAL = "awaiting_approval"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    SUCCEEDED = "succeeded"
    DRIFT = "drift"
    FROZEN = "frozen"

    def __str__(self) -> str:
        return self.value


DEFAULT_NOTICES = (Notice.AWAITING_APPROVAL, Notice.FAILED, Notice.ROLLED_BACK, Notice.DRIFT)


class ChatService(str, Enum):
    TEAMS = "teams"  # Power Automate "workflow" webhook (Adaptive Card in an attachment)
    SLACK = "slack"  # incoming webhook ({"text": ...})

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ChatHook:
    service: ChatService
    setting: str  # name of the app setting holding the URL (a Key Vault reference in Azure)
    on: tuple[Notice, ...] = DEFAULT_NOTICES


@dataclass(frozen=True)
class ReleaseControls:
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    freezes: tuple[FreezeWindow, ...] = ()
    promote: tuple[Promotion, ...] = ()
    notify: tuple[ChatHook, ...] = ()
    promotion_only: bool = False  # the rule takes digests promoted from another app, never pushes

    def to_dict(self) -> dict[str, Any]:
        return {
            "approval": {"required": self.approval.required, "approvers": list(self.approval.approvers),
                         "expires_s": self.approval.expires_s},
            "freezes": [w.to_dict() for w in self.freezes],
            "promote": [{"to": p.to, "after_s": p.after_s, "resource_group": p.resource_group}
                        for p in self.promote],
            "notify": [{"service": h.service.value, "setting": h.setting, "on": [n.value for n in h.on]}
                       for h in self.notify],
            "promotion_only": self.promotion_only,
        }

    @classmethod
    def from_dict(cls, data: Any) -> "ReleaseControls":
        if isinstance(data, ReleaseControls):
            return data
        if not data:
            return cls()
        approval = data.get("approval") or {}
        return cls(
            approval=ApprovalPolicy(bool(approval.get("required")), tuple(approval.get("approvers") or ()),
                                    float(approval.get("expires_s") or DEFAULT_APPROVAL_EXPIRY_S)),
            freezes=tuple(FreezeWindow.from_dict(w) for w in data.get("freezes") or ()),
            promote=tuple(Promotion(p["to"], float(p.get("after_s") or 0), p.get("resource_group") or "")
                          for p in data.get("promote") or ()),
            notify=tuple(ChatHook(ChatService(h["service"]), h["setting"],
                                  tuple(Notice(n) for n in h.get("on") or ()))
                         for h in data.get("notify") or ()),
            promotion_only=bool(data.get("promotion_only")),
        )
