"""Target templates (`pr-{group:pr}`, `{name}-preview`) and Azure resource-name hygiene.

A tag is chosen by whoever can push to the registry, so a templated name is treated as hostile:
after substitution it is lowercased, every character outside [a-z0-9-] becomes '-', dash runs
collapse, leading non-letters and trailing dashes go, and an overlong name is cut and given a
short hash of the unsanitized value (so two long tags do not silently share one app). If nothing
valid is left the target does not match, with the reason; a hostile tag never reaches ARM as an
invalid name.
"""

from __future__ import annotations

import hashlib
import re
from typing import Mapping

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
SIMPLE_FIELDS = ("repository", "name", "tag", "registry")

# Container Apps: lowercase letters, digits and '-', 2-32 characters, starts with a letter, ends
# with a letter or digit, no '--' (the service uses '--' to join app and revision suffix).
APP_NAME_MAX = 32
_APP_NAME = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
# Container names follow the Kubernetes DNS-label shape; 63 is the label limit (the Container
# Apps limit may be lower; ARM reports it if so, as for any literal name).
CONTAINER_NAME_MAX = 63
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
_SUBSCRIPTION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")


class TemplateError(ValueError):
    """A template names a placeholder that does not exist (load time) or cannot be filled."""


def placeholders(template: str) -> list[str]:
    return PLACEHOLDER.findall(template)


def check_template(template: str, groups: frozenset[str]) -> None:
    """Load-time check: every placeholder is known and every `{group:X}` is a group of the policy."""
    if template.count("{") != template.count("}"):
        raise TemplateError("unbalanced braces")
    for name in placeholders(template):
        if name in SIMPLE_FIELDS:
            continue
        if name.startswith("group:"):
            group = name[len("group:"):]
            if group not in groups:
                raise TemplateError(
                    f"{{{name}}}: the tag policy has no group {group!r} "
                    f"(available: {', '.join(sorted(groups)) or 'none'})"
                )
            continue
        raise TemplateError(
            f"unknown placeholder {{{name}}} (use {{repository}}, {{name}}, {{tag}}, {{registry}} "
            "or {group:NAME})"
        )


def render(template: str, values: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)


def is_valid_app_name(name: str) -> bool:
    return 2 <= len(name) <= APP_NAME_MAX and bool(_APP_NAME.match(name)) and "--" not in name


def is_valid_container_name(name: str) -> bool:
    return 1 <= len(name) <= CONTAINER_NAME_MAX and bool(_APP_NAME.match(name)) and "--" not in name


def is_valid_resource_group(name: str) -> bool:
    return bool(_RESOURCE_GROUP.match(name))


def is_valid_subscription(value: str) -> bool:
    return bool(_SUBSCRIPTION.match(value))


def sanitize_name(raw: str, max_len: int = APP_NAME_MAX) -> str | None:
    """Best valid Container App (or container) name for a templated value, or None if none."""
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower())
    name = re.sub(r"-{2,}", "-", name)
    name = re.sub(r"^[^a-z]+", "", name).rstrip("-")
    if len(name) > max_len:
        suffix = hashlib.sha256(raw.encode()).hexdigest()[:6]
        name = name[: max_len - len(suffix) - 1].rstrip("-") + "-" + suffix
    if len(name) < 2 or not _APP_NAME.match(name) or "--" in name:
        return None
    return name


def literal_text(template: str) -> str:
    """The template without its placeholders (the part a config author wrote)."""
    return PLACEHOLDER.sub("", template)
