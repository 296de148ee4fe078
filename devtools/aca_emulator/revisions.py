"""Revision and traffic semantics of Container Apps, on the plain-dict app records kept by the store.

Rules (from the service docs; see docs/emulator.md for sources and deliberate choices):
- A change to ``properties.template`` creates a revision ``<app>--<revisionSuffix>``; configuration-only changes
  do not. Without a suffix the service generates one.
- Single mode: all traffic goes to the latest *ready* revision; once a new revision is ready, the others are
  deactivated (if it fails, the previous one keeps serving).
- Labels mode (``activeRevisionsMode: Labels``; API description: "Only revisions with labels are active. Traffic
  weights can be applied to labels"): every traffic entry carries a label; a new revision gets the label
  ``configuration.targetLabel`` names ("Required in labels revisions mode. Label to apply to newly created
  revision"), which moves to it with its weight; a revision no label references is deactivated. Routing by the
  weights is as in Multiple mode.
- Multiple mode: weights come from ``configuration.ingress.traffic``; ``latestRevision: true`` resolves to the
  latest *ready* revision (spec: "latest stable revision"; docs: traffic doesn't switch to the latest revision
  until it's ready), so it follows each new revision once that one is ready; entries pinned by
  ``revisionName`` leave a new revision at 0.
- Names: a revision suffix and a label start with a letter, use lowercase letters, digits and single dashes,
  end with a letter or digit and are at most 64 characters (docs "revisions"); the app name and the suffix
  together are at most 54 characters (the service's ContainerAppInvalidRevisionName message).
"""
from __future__ import annotations

import json
import re
import secrets
import string
from typing import Any

from .errors import bad_request

# Suffixes and labels share the documented rule; "--" is excluded separately.
_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,62}[a-z0-9])?$")
MAX_APP_PLUS_SUFFIX = 54
DEFAULT_MAX_INACTIVE = 100  # the service's documented default for maxInactiveRevisions


def generated_suffix() -> str:
    # The service uses short random lowercase suffixes such as "pjxhsye".
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(7))


def revision_name(app_name: str, suffix: str) -> str:
    return f"{app_name}--{suffix}"


def mode(app: dict) -> str:
    conf = app["resource"]["properties"].get("configuration") or {}
    return mode_of(conf)


def mode_of(configuration: dict | None) -> str:
    """single | multiple | labels, from a configuration object (the stored one or a request's)."""
    value = str((configuration or {}).get("activeRevisionsMode") or "Single").lower()
    return value if value in ("multiple", "labels") else "single"


def with_target_label(traffic: list | None, label: str, new_revision: str) -> list:
    """Labels mode: the traffic table once a new revision took the target label. The label's entry moves
    to the new revision with its weight (a label not in the table yet is added at 0 %)."""
    out, found = [], False
    for entry in traffic or []:
        if isinstance(entry, dict) and entry.get("label") == label:
            out.append({"revisionName": new_revision, "label": label, "weight": entry.get("weight") or 0})
            found = True
        else:
            out.append(entry)
    if not found:
        out.append({"revisionName": new_revision, "label": label, "weight": 0})
    return out


def check_labels_mode(traffic: list | None, target_label: object, new_revision: str | None) -> None:
    """400 for what Labels mode refuses: a new revision without ``targetLabel``, an entry without a label."""
    if new_revision and not valid_name(target_label):
        raise bad_request(
            "ContainerAppTargetLabelRequired",
            "configuration.targetLabel is required in Labels revision mode: it names the label the new "
            f"revision gets (a valid label name, not {target_label!r}).",
        )
    for entry in traffic or []:
        if isinstance(entry, dict) and not entry.get("label"):
            raise bad_request(
                "ContainerAppInvalidTrafficConfiguration",
                "In Labels revision mode every traffic entry needs a label; traffic weights apply to labels.",
            )


def unlabelled_active(app: dict) -> list[dict]:
    """Labels mode: the active revisions no label references (the service keeps only labelled ones)."""
    named = set(labels(app).values())
    return [rev for rev in app["revisions"] if rev["active"] and rev["name"] not in named]


def ingress(app: dict) -> dict | None:
    conf = app["resource"]["properties"].get("configuration") or {}
    return conf.get("ingress")


def has_ingress(app: dict) -> bool:
    return isinstance(ingress(app), dict)


def is_internal(app: dict) -> bool:
    """Ingress limited to the environment (``external: false``); the spec's default is false, but an app
    created through the portal or CLI with ingress usually says which it is."""
    ing = ingress(app)
    return isinstance(ing, dict) and not ing.get("external", False)


def configured_traffic(app: dict) -> list[dict]:
    ing = ingress(app) or {}
    traffic = ing.get("traffic")
    # An app created without explicit traffic follows its latest revision (Azure/aca-review-apps#41).
    return traffic if traffic else [{"latestRevision": True, "weight": 100}]


def revisions_by_name(app: dict) -> dict[str, dict]:
    return {rev["name"]: rev for rev in app["revisions"]}


def _resolve(entry: dict, app: dict) -> str | None:
    if entry.get("latestRevision"):
        # The latest ready revision; before any revision was ready, the newest one (which cannot serve yet).
        return app.get("latestReady") or app.get("latest")
    return entry.get("revisionName")


def valid_name(value: object) -> bool:
    """The documented rule for revision suffixes and labels."""
    return isinstance(value, str) and bool(_NAME_RE.match(value)) and "--" not in value


def effective_weights(app: dict) -> dict[str, int]:
    """Current routing weights of active revisions, in revision creation order."""
    revs = revisions_by_name(app)
    weights: dict[str, int] = {}
    if mode(app) == "single":
        target = app.get("latestReady")
        if not (target and revs.get(target, {}).get("active")):
            target = app.get("latest")
        if target and revs.get(target, {}).get("active"):
            weights[target] = 100
    else:
        traffic = configured_traffic(app)
        if not any(entry.get("weight") is not None for entry in traffic):
            # Only label entries (no weight anywhere): the app URL follows the latest ready revision.
            traffic = [{"latestRevision": True, "weight": 100}]
        for entry in traffic:
            name = _resolve(entry, app)
            if name in revs and revs[name]["active"]:
                weights[name] = weights.get(name, 0) + int(entry.get("weight") or 0)
    order = [rev["name"] for rev in app["revisions"]]
    return {name: weights[name] for name in order if name in weights}


def labels(app: dict) -> dict[str, str]:
    """label -> revision name, for every labelled traffic entry."""
    out = {}
    for entry in (ingress(app) or {}).get("traffic") or []:
        if entry.get("label"):
            name = _resolve(entry, app)
            if name:
                out[entry["label"]] = name
    return out


def validate_traffic(app_name: str, traffic: list | None, revs: dict[str, dict], new_revision: str | None) -> None:
    """400 for the invalid bodies the service rejects: weights not summing to 100, unknown or inactive
    revision names, duplicate labels, entries that are neither pinned nor latest."""
    if not traffic:
        return
    if not isinstance(traffic, list):
        raise bad_request("InvalidRequestContent", "configuration.ingress.traffic must be an array.")
    total, weighted, seen_labels = 0, False, set()
    for entry in traffic:
        if not isinstance(entry, dict):
            raise bad_request("InvalidRequestContent", "Each traffic entry must be an object.")
        name, latest = entry.get("revisionName"), bool(entry.get("latestRevision"))
        if name and latest:
            raise bad_request(
                "ContainerAppInvalidTrafficConfiguration",
                "A traffic entry cannot set both revisionName and latestRevision=true.",
            )
        if not name and not latest:
            raise bad_request(
                "ContainerAppInvalidTrafficConfiguration",
                "Each traffic entry needs a revisionName or latestRevision=true.",
            )
        weighted = weighted or entry.get("weight") is not None
        weight = entry.get("weight") or 0  # optional in the spec: a label-only entry carries none
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise bad_request("ContainerAppInvalidTrafficWeight", f"Traffic weight {weight!r} must be 0..100.")
        total += weight
        if name and name != new_revision:
            if name not in revs:
                raise bad_request(
                    "ContainerAppRevisionNotFound",
                    f"Revision '{name}' does not exist in container app '{app_name}'.",
                )
            if not revs[name]["active"]:
                raise bad_request(
                    "ContainerAppRevisionNotActive",
                    f"Revision '{name}' is not active; activate it before assigning traffic or a label.",
                )
        label = entry.get("label")
        if label is not None:
            if not valid_name(label):
                raise bad_request(
                    "ContainerAppInvalidLabel",
                    f"Label {label!r} is invalid. A label must consist of lower case alphanumeric characters "
                    "or '-', start with an alphabetic character, end with an alphanumeric character, cannot "
                    "have '--' and must not be more than 64 characters.",
                )
            if label in seen_labels:
                raise bad_request("ContainerAppDuplicateLabel", f"Label '{label}' is used more than once.")
            seen_labels.add(label)
    if weighted and total != 100:
        raise bad_request(
            "ContainerAppInvalidTrafficWeight",
            f"The sum of traffic weights must be 100, got {total}.",
        )


def check_suffix(app_name: str, suffix: str, revs: dict[str, dict]) -> str:
    if not valid_name(suffix) or len(app_name) + len(suffix) > MAX_APP_PLUS_SUFFIX:
        # The service's own code and wording (seen in public issues, e.g. azure-container-apps#1443).
        raise bad_request(
            "ContainerAppInvalidRevisionName",
            f"Revision name has an invalid value {suffix!r}. A revision name must consist of lower case "
            "alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric "
            f"character. The length of the revision name must not be more than a combined "
            f"{MAX_APP_PLUS_SUFFIX} characters with the container app name.",
        )
    name = revision_name(app_name, suffix)
    if name in revs:
        raise bad_request(
            "ContainerAppRevisionSuffixAlreadyExists",
            f"Revision with suffix '{suffix}' already exists in container app '{app_name}' ({name}).",
        )
    return name


def _canonical(value: Any) -> str:
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return json.dumps(strip(value), sort_keys=True)


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON, ignoring nulls (a client that echoes a GET sends explicit nulls)."""
    return _canonical(a) == _canonical(b)


def template_changed(old: dict | None, new: dict | None) -> bool:
    """Whole-template comparison, nulls ignored: any revision-scope change (image, env, scale, suffix...)."""
    return _canonical(old or {}) != _canonical(new or {})


def images(template: dict | None) -> list[str]:
    return [c.get("image", "") for c in (template or {}).get("containers") or [] if isinstance(c, dict)]


def prune_inactive(app: dict) -> list[str]:
    """Honour maxInactiveRevisions: drop the oldest inactive revisions not referenced by traffic."""
    conf = app["resource"]["properties"].get("configuration") or {}
    limit = conf.get("maxInactiveRevisions")
    limit = DEFAULT_MAX_INACTIVE if limit is None else int(limit)
    referenced = {e.get("revisionName") for e in (ingress(app) or {}).get("traffic") or []}
    inactive = [r for r in app["revisions"] if not r["active"] and r["name"] not in referenced]
    removed = []
    while len(inactive) > max(limit, 0):
        victim = inactive.pop(0)  # app["revisions"] is in creation order
        app["revisions"].remove(victim)
        removed.append(victim["name"])
    return removed
