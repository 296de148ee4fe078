"""`python -m devtools.sandbox push REPO:TAG [--image-variant ok|broken|unhealthy|slow]`.

Builds the sample image as an OCI layout, tells the emulator how a revision running it behaves
(by digest, so "broken" means this very image), and pushes it into the sandbox registry with
skopeo; the registry's notification then travels through the bridge as an ImagePushed event.
Without a registry (or skopeo) the same event is posted straight to the function's Event Grid
webhook, and the output says so.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx

from shared import acr_events
from devtools.sandbox import bridge as bridge_mod
from devtools.sandbox.oci import MANIFEST_MEDIA_TYPE, VARIANTS, SampleImage, build_image, parse_reference, skopeo_push
from devtools.sandbox.sandbox import (
    DEFAULT_DIR, SandboxError, behavior_args, pusher, read_endpoints, remember_behavior,
)


@dataclass(frozen=True)
class PushResult:
    image: SampleImage
    via: str  # "registry" (skopeo + notification) or "direct" (event posted to the webhook)
    event_id: str = ""  # direct mode: the event's id
    delivered: bool | None = None  # did the event reach the function (None: not known)


def push(ref: str, variant: str = "ok", directory: str | Path = DEFAULT_DIR, *,
         wait_delivery_s: float = 15.0, echo: Callable[[str], None] = print) -> PushResult:
    repository, tag = parse_reference(ref)
    endpoints = read_endpoints(directory)
    image = build_image(Path(endpoints["dir"]) / "images", repository, tag, variant)
    echo(f"built {repository}:{tag} ({variant}) as an OCI layout: {image.layout_dir} [{image.digest[:19]}]")
    if VARIANTS[variant]:
        register_variant(endpoints, image)
    skopeo = shutil.which("skopeo")
    if endpoints.get("registry_mode") == "registry" and skopeo:
        skopeo_push(image, endpoints["registry"], skopeo)
        echo(f"pushed {endpoints['registry']}/{repository}:{tag} with skopeo")
        delivered = _wait_bridge(endpoints, image.digest, wait_delivery_s)
        if delivered:
            echo(f"the registry's notification reached the function app as an ImagePushed event "
                 f"({endpoints.get('schema', 'eventgrid')} schema, through the bridge)")
        elif delivered is False:
            echo(f"warning: no successful ImagePushed delivery for {repository}:{tag} yet "
                 f"(see {endpoints['logs_dir']}/bridge.log and {endpoints['deadletter_dir']})")
        return PushResult(image, "registry", delivered=delivered)
    why = "skopeo is not installed" if endpoints.get("registry_mode") == "registry" else "no registry is running"
    event = direct_event(endpoints, image)
    outcome = _deliver_direct(endpoints, event)
    echo(f"{why}: sent the ImagePushed event for {repository}:{tag} directly to the function's "
         f"Event Grid webhook ({outcome.outcome}, HTTP {outcome.status})")
    if not outcome.ok:
        raise SandboxError(f"the webhook refused the event: HTTP {outcome.status} {outcome.detail}")
    return PushResult(image, "direct", event_id=str(event["id"]), delivered=True)


def register_variant(endpoints: dict[str, Any], image: SampleImage) -> None:
    """Revisions running exactly this image (pinned by digest) behave as the variant says."""
    from devtools.aca_emulator import EmulatorControl

    behavior = {"image": f"*@{image.digest}", **VARIANTS[image.variant]}
    with EmulatorControl(endpoints["arm_url"], endpoints["arm_ca"]) as control:
        control.add_behavior(**behavior_args(behavior))
    remember_behavior(endpoints["dir"], behavior)


def direct_event(endpoints: dict[str, Any], image: SampleImage) -> dict[str, Any]:
    """The event the bridge would have built from the registry's notification."""
    registry_event_id = str(uuid.uuid4())
    return acr_events.image_pushed(
        registry=endpoints["registry"], repository=image.repository, tag=image.tag, digest=image.digest,
        media_type=MANIFEST_MEDIA_TYPE, size=image.size, location="local",
        registry_resource_id=endpoints["registry_resource_id"], schema=endpoints.get("schema", "eventgrid"),
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{endpoints['registry_resource_id']}/events/{registry_event_id}")),
        data_id=registry_event_id, event_time=datetime.now(timezone.utc), user_agent="acr-deploy-sandbox",
        actor=pusher(),
    )


def _deliver_direct(endpoints: dict[str, Any], event: dict[str, Any], attempts: int = 4) -> bridge_mod.Outcome:
    """A few quick retries, as Event Grid would (no dead-letter here: the caller sees the failure)."""
    outcome = None
    with httpx.Client(timeout=30.0) as client:
        for attempt in range(attempts):
            outcome = bridge_mod.deliver_once(client, endpoints["eventgrid_webhook_url"], event,
                                              endpoints.get("schema", "eventgrid"), attempt)
            if outcome.ok or not outcome.retriable:
                break
            time.sleep(0.5 * 2 ** attempt)
    assert outcome is not None
    return outcome


def _wait_bridge(endpoints: dict[str, Any], digest: str, timeout_s: float) -> bool | None:
    """Watch the bridge's recent deliveries for this digest (True: delivered; False: not in time)."""
    url = endpoints.get("bridge_url")
    if not url or timeout_s <= 0:
        return None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            recent = httpx.get(f"{url}/healthz", timeout=2.0).json().get("recent", [])
        except (httpx.HTTPError, ValueError):
            recent = []
        if any(d.get("digest") == digest and d.get("outcome") == "Success" for d in recent):
            return True
        time.sleep(0.1)
    return False
