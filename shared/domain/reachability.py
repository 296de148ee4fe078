"""Can the function's smoke checks reach an app at all? Decided before a revision is created (pure).

The function runs outside the app's Container Apps environment. From there, an app with internal
ingress answers 404 at the environment's edge (its FQDN has `.internal.`), an app without ingress has
no URL, an IP allow-list refuses addresses it does not list (403), built-in authentication redirects
or answers 401 without credentials, and `clientCertificateMode: require` refuses a TLS client without a
certificate. Each used to surface as a smoke check failing or timing out after the revision existed.

A rule (`rollout.checks`) or the app's `acr-deploy.checks` resource tag says what to do:

    auto   (default) the HTTP checks, unless the app is unreachable: then the deployment fails up
           front, naming why and how to opt out
    http   the HTTP checks whatever the app looks like (e.g. the function's outbound addresses are on
           the app's IP allow-list, or the checked paths are excluded from authentication)
    none   no HTTP checks: the rollout relies on the revision's health state, before the shift and
           for the verify window after each step
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from shared.domain.model import CheckMode

CHECKS_TAG = "acr-deploy.checks"


class AuthState(str, Enum):
    OFF = "off"
    ON = "on"  # built-in authentication enabled and unauthenticated callers refused
    UNKNOWN = "unknown"  # the function's role may not read authConfigs

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class AppAccess:
    """How a caller outside the app's environment gets to it, as the app's configuration says."""

    ingress: str = "external"  # external | internal | none
    ip_allow_list: bool = False  # ipSecurityRestrictions with Allow rules: only those ranges get in
    client_certificates: str = ""  # clientCertificateMode: ignore | accept | require
    auth: AuthState = AuthState.OFF
    auth_note: str = ""  # why `auth` is UNKNOWN (the service's refusal)


def unreachable_reasons(access: AppAccess) -> list[str]:
    """Why smoke checks from outside the environment cannot get an answer from the app's revisions."""
    reasons = []
    if access.ingress == "none":
        reasons.append("it has no ingress, so its revisions have no URL")
    elif access.ingress == "internal":
        reasons.append("its ingress is internal (reachable only from inside its Container Apps environment)")
    if access.ip_allow_list:
        reasons.append("its ingress has an IP allow-list (ipSecurityRestrictions) that must list the "
                       "function's outbound addresses")
    if access.client_certificates.lower() == "require":
        reasons.append("its ingress requires client certificates")
    if access.auth == AuthState.ON:
        reasons.append("built-in authentication refuses unauthenticated requests")
    return reasons


def parse_check_mode(value: str) -> CheckMode:
    """A `checks` value from a rule or resource tag. Raises ValueError naming the choices."""
    try:
        return CheckMode(value.strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in CheckMode)
        raise ValueError(f"checks must be one of {choices}, not {value!r}") from None


def effective_check_mode(rule_mode: CheckMode, tag_value: str | None) -> CheckMode:
    """The app's `acr-deploy.checks` tag, when set, overrides the rule (it sits with the app, whose
    owner knows how it is exposed). Raises ValueError for a tag value that is not a mode."""
    return parse_check_mode(tag_value) if tag_value is not None and tag_value.strip() else rule_mode


def check_tag(tags: dict[str, str]) -> str | None:
    # Azure tag names are case-insensitive.
    return next((v for k, v in tags.items() if k.lower() == CHECKS_TAG), None)


def refusal(app: str, access: AppAccess) -> str:
    """The failure text for an app the checks cannot reach ("" when they can)."""
    reasons = unreachable_reasons(access)
    if not reasons:
        return ""
    text = (f"smoke checks cannot reach {app} from the function (outside its environment): "
            f"{'; '.join(reasons)}. Nothing was changed. To deploy without HTTP checks (relying on the "
            f"revision's health state and the verify window), set `checks: none` in the rule's rollout or "
            f"the resource tag {CHECKS_TAG}=none; if the checks can get through after all, `checks: http`")
    if access.auth == AuthState.UNKNOWN:
        text += f". (Built-in authentication could not be read: {access.auth_note})"
    return text
