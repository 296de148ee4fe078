"""`acr-deploy send-event [REGISTRY/]REPO:TAG`: post a sample ImagePushed event to a function app's
Event Grid webhook, exactly as Event Grid would deliver it (`aeg-event-type: Notification`).

Works against `func start`, the dev host and a deployed app alike: the URL shape is the same,
`<base>/runtime/webhooks/EventGrid?functionName=on_image_pushed&code=<key>`. func start checks no
keys locally; the dev host wants its key; Azure wants the `eventgrid_extension` system key.
The environment variables read here are the client's (where to send), not app settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from shared import acr_events
from shared.domain.references import parse_reference
from shared.cli._api import KEY_ENV, URL_ENV, redact, split_key
DEFAULT_URL = "http://127.0.0.1:7071"
DEFAULT_REGISTRY = "myregistry.azurecr.io"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "send-event",
        help="post a sample ImagePushed event to the function (func start, dev host or Azure)",
        description="Post a sample Microsoft.ContainerRegistry.ImagePushed event to the function "
        "app's Event Grid webhook, as Event Grid delivers it. No image is pushed anywhere.",
    )
    parser.add_argument("ref", metavar="[REGISTRY/]REPO:TAG",
                        help="e.g. orders-api:1.4.2 or myreg.azurecr.io/orders-api:1.4.2")
    parser.add_argument("--url", default=None,
                        help=f"function app base URL (default: ${URL_ENV} or {DEFAULT_URL})")
    parser.add_argument("--code", default=None,
                        help=f"key for the webhook: the dev host's key, or the eventgrid_extension "
                        f"system key in Azure (default: ${KEY_ENV}; func start needs none)")
    parser.add_argument("--registry", default=None,
                        help=f"registry login server (default: from REF, else {DEFAULT_REGISTRY})")
    parser.add_argument("--registry-resource-id", default=None,
                        help="the event's topic/source (default: derived from the login server)")
    parser.add_argument("--actor", default=None,
                        help="who pushed (the event's data.actor.name; ACR sets the user or token name)")
    parser.add_argument("--digest", default=None, help="sha256:... (default: a random digest)")
    parser.add_argument("--schema", choices=acr_events.SCHEMAS, default="eventgrid",
                        help="Event Grid schema (default) or CloudEvents 1.0")
    parser.add_argument("--function", default="on_image_pushed",
                        help="Event Grid triggered function name (default: on_image_pushed)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the answer (Event Grid waits 30)")
    parser.add_argument("--print", dest="print_only", action="store_true",
                        help="print the delivery body (JSON) instead of sending it")
    parser.set_defaults(func=cmd_send_event)


def build_event(args: argparse.Namespace) -> dict[str, Any]:
    """The event the command sends; raises ValueError with a message for the user."""
    ref_registry, repository, tag, ref_digest = parse_reference(args.ref)
    if not tag:
        raise ValueError(f"{args.ref!r}: give a tag, as in orders-api:1.4.2")
    registry = (args.registry or ref_registry or DEFAULT_REGISTRY).lower()
    if args.digest and ref_digest and args.digest != ref_digest:
        raise ValueError("the digest in REF and --digest differ")
    return acr_events.image_pushed(
        registry=registry,
        repository=repository,
        tag=tag,
        digest=args.digest or ref_digest,
        registry_resource_id=args.registry_resource_id,
        schema=args.schema,
        actor=getattr(args, "actor", None) or None,
    )


def cmd_send_event(args: argparse.Namespace) -> int:
    try:
        event = build_event(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    body, headers = acr_events.notification(event, schema=args.schema)
    if args.print_only:
        print(json.dumps(json.loads(body), indent=2))
        return 0

    import httpx

    # A function URL copied with its ?code= carries the key: use it, never print it.
    base, key_in_url = split_key(args.url or os.environ.get(URL_ENV) or DEFAULT_URL)
    code = args.code or os.environ.get(KEY_ENV) or key_in_url or None
    url = acr_events.webhook_url(base, function_name=args.function)
    if code:
        headers["x-functions-key"] = code  # a header, so the key stays out of any URL printed or logged
    target = event["data"]["target"]
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"error: could not reach {redact(url)}: {type(exc).__name__}", file=sys.stderr)
        print("is the function app running? (`func start` or `python -m devtools.host`)", file=sys.stderr)
        return 1
    status = f"{response.status_code} {response.reason_phrase}".strip()
    print(f"{status}: ImagePushed {event['data']['request']['host']}/{target['repository']}:{target['tag']} "
          f"({target['digest']}) event id {event['id']}")
    if response.is_success:
        return 0
    hints = {
        401: f"the webhook wants a key: --code KEY or {KEY_ENV} (dev host: its key; Azure: the eventgrid_extension system key)",
        404: f"no Event Grid function {args.function!r} at {redact(base)}",
        500: "the function raised: see the host's log (Event Grid would retry this delivery)",
    }
    if response.status_code in hints:
        print(hints[response.status_code], file=sys.stderr)
    return 1
