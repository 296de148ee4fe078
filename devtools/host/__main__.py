"""`python -m devtools.host`: serve function_app.py like `func start` (see docs/devhost.md)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from devtools.host.config import ConfigError
from devtools.host.functions import AppLoadError
from devtools.host.host import KEY_ENV, REPO_ROOT, DevHost


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.host",
        description="Serve function_app.py's bindings like `func start` does (HTTP, Event Grid, "
        "queue and timer triggers), for machines without Azure Functions Core Tools.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: Host.LocalHttpPort from the settings, else 7071; 0 = a free port)")
    parser.add_argument("--app-dir", default=str(REPO_ROOT), help="function app root (default: the repo root)")
    parser.add_argument("--settings", default=None,
                        help="local.settings.json to load (default: <app-dir>/local.settings.json if present)")
    parser.add_argument("--function-key", default=None,
                        help=f"key accepted for HTTP functions and the Event Grid webhook "
                        f"(default: ${KEY_ENV}, else a generated one)")
    parser.add_argument("--no-queues", action="store_true", help="do not poll queue triggers")
    parser.add_argument("--no-timers", action="store_true", help="do not run timer triggers")
    parser.add_argument("--drain-timeout", type=float, default=10.0,
                        help="seconds to let running invocations finish on shutdown (default 10)")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("azure", "httpx", "httpcore"):  # client request logs carry URLs (and keys)
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings_file = args.settings
    if settings_file is None:
        default = Path(args.app_dir) / "local.settings.json"
        settings_file = str(default) if default.exists() else None
        if settings_file is None:
            print(f"note: {default} not found; using the environment only "
                  "(copy local.settings.sample.json to start)", file=sys.stderr)
    host = DevHost(
        app_dir=args.app_dir, settings_file=settings_file, host=args.host, port=args.port,
        function_key=args.function_key, queues=not args.no_queues, timers=not args.no_timers,
        drain_timeout_s=args.drain_timeout,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        host.start()
    except (ConfigError, AppLoadError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Dev host listening on {host.url}", flush=True)
    print(host.summary(), flush=True)
    if host.key_generated:
        # Printed once so the developer can call the API; never written to the log.
        print(f"Function key (generated; set {KEY_ENV} or --function-key to fix it): {host.function_key}",
              flush=True)
    while not stop.wait(1.0):
        pass
    print("Dev host stopping (draining running invocations)...", flush=True)
    drained = host.stop()
    print("Dev host stopped" + ("" if drained else " (some invocations were still running)"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
