"""CLI: python -m devtools.aca_emulator --host 127.0.0.1 --port PORT --tls-dir DIR [--state FILE] [--seed FILE]
[--provisioning-delay S] [--rbac FILE] [-v]. Prints the base URL, writes DIR/ca.pem, runs until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .server import EmulatorServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.aca_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tls-dir", required=True, help="where ca.pem (and the CA key) live")
    parser.add_argument("--state", help="JSON file keeping state across restarts")
    parser.add_argument("--seed", help="YAML/JSON seed file (environments and apps to create)")
    parser.add_argument("--provisioning-delay", type=float, default=0.05, help="seconds an LRO stays InProgress")
    parser.add_argument("--rbac", help="RBAC mode: YAML/JSON list of role assignments (principal, scope, actions "
                                       "or role_bicep); calls outside them answer 403 AuthorizationFailed")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request line (never headers)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")

    emu = EmulatorServer(host=args.host, port=args.port, tls_dir=args.tls_dir, state_file=args.state,
                         seed=args.seed, provisioning_delay=args.provisioning_delay, role_assignments=args.rbac)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    emu.start()
    print(f"ACA emulator listening on {emu.base_url}", flush=True)
    print(f"CA certificate: {emu.ca_path}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
        print("ACA emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
