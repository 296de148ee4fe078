"""Run every `benchmarks/<module>.py` that defines `main()`, in name order (`make bench`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import benchmarks


def main() -> int:
    failures = 0
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        run = getattr(module, "main", None)
        if not callable(run):
            continue
        print(f"\n=== benchmarks.{info.name} ===", flush=True)
        started = time.monotonic()
        try:
            run()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failures += 1
            print(f"benchmarks.{info.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"=== {info.name}: {time.monotonic() - started:.1f} s ===", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
