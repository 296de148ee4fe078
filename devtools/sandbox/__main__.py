"""python -m devtools.sandbox up|demo|status|down|push|env — the whole pipeline on loopback (docs/sandbox.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from devtools.sandbox.oci import PushError
from devtools.sandbox.sandbox import DEFAULT_DIR, Sandbox, SandboxError, public_endpoints


def _sandbox_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir or os.environ.get("ACR_DEPLOY_SANDBOX_DIR") or DEFAULT_DIR)


def cmd_up(args: argparse.Namespace) -> int:
    sandbox = Sandbox(_sandbox_dir(args), rules_file=args.rules, schema=args.schema, keep_data=args.keep,
                      rbac=args.rbac)
    endpoints = sandbox.up()
    print(json.dumps(public_endpoints(endpoints), indent=2))
    print(f"\nendpoints (with the function key): {sandbox.endpoints_path}")
    print("push an image:  python -m devtools.sandbox push orders-api:1.4.2")
    print("stop:           python -m devtools.sandbox down")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    report = Sandbox(_sandbox_dir(args)).down()
    print("\n".join(report) if report else "nothing was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status = Sandbox(_sandbox_dir(args)).status()
    if args.json:
        if status["endpoints"]:
            status["endpoints"] = public_endpoints(status["endpoints"])
        print(json.dumps(status, indent=2))
        return 0 if status["processes"] else 3
    if not status["processes"]:
        print(f"no sandbox in {status['dir']}")
        return 3
    for name, info in status["processes"].items():
        state = "running" if info["running"] else "NOT RUNNING"
        print(f"{name:9} {state:12} pid {info['pid']:<8} log {info['log']}")
    if status["endpoints"]:
        shown = public_endpoints(status["endpoints"])
        for key in ("function_url", "registry", "registry_mode", "bridge_url", "schema", "arm_url"):
            print(f"{key:22} {shown.get(key)}")
    if status["deadlettered"]:
        print(f"dead-lettered events: {status['deadlettered']} (in {status['dir']}/deadletter)")
    all_up = all(info["running"] for info in status["processes"].values())
    return 0 if all_up else 1


def cmd_env(args: argparse.Namespace) -> int:
    """Shell exports for the acr-deploy CLI: `eval "$(python -m devtools.sandbox env)"`."""
    import shlex

    from devtools.sandbox.sandbox import read_endpoints

    endpoints = read_endpoints(_sandbox_dir(args))
    url, key = endpoints["function_url"], endpoints["function_key"]
    # history/show/apps and send-event all read ACR_DEPLOY_FUNCTION_URL / _KEY.
    for name, value in (("ACR_DEPLOY_FUNCTION_URL", url), ("ACR_DEPLOY_FUNCTION_KEY", key)):
        print(f"export {name}={shlex.quote(value)}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from devtools.sandbox.push import push

    push(args.ref, args.image_variant, _sandbox_dir(args))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from devtools.sandbox.demo import run_demo

    return run_demo(_sandbox_dir(args), rules_file=args.rules, schema=args.schema, keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    from devtools.sandbox.oci import VARIANTS

    parser = argparse.ArgumentParser(prog="python -m devtools.sandbox", description=__doc__)
    parser.add_argument("--dir", help=f"sandbox directory (default {DEFAULT_DIR}; env ACR_DEPLOY_SANDBOX_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start everything and write endpoints.json")
    demo = sub.add_parser("demo", help="up, push the samples, show the rollouts live, then stop")
    for p in (up, demo):
        p.add_argument("--rules", help="rules YAML (default devtools/sandbox/rules.yaml)")
        p.add_argument("--schema", choices=("eventgrid", "cloudevents"), default="eventgrid",
                       help="event schema the bridge delivers (default eventgrid)")
    up.add_argument("--keep", action="store_true",
                    help="keep the previous run's data (storage, registry, emulator state)")
    up.add_argument("--no-rbac", dest="rbac", action="store_false",
                    help="emulator without RBAC (by default the pipeline gets only the role infra/ grants)")
    demo.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")
    up.set_defaults(func=cmd_up)
    demo.set_defaults(func=cmd_demo)

    sub.add_parser("down", help="stop everything").set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="what runs, where")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    sub.add_parser("env", help="print shell exports for the acr-deploy CLI (includes the key)").set_defaults(
        func=cmd_env)
    push = sub.add_parser("push", help="build a sample image and push it to the sandbox registry")
    push.add_argument("ref", metavar="REPO:TAG")
    push.add_argument("--image-variant", default="ok", choices=sorted(VARIANTS),
                      help="ok (serves 200), broken (500: smoke checks fail), unhealthy (never ready), slow")
    push.set_defaults(func=cmd_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SandboxError, PushError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
