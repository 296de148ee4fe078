"""Start and stop Azurite (the npm package, pinned in package.json) on free loopback ports.

Used by the test fixtures, the benchmarks and the sandbox, so every one of them talks to the same
kind of real Storage emulator through the real SDKs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from devtools.netutil import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent

# Azurite's well-known development account: documented publicly, accepted only by emulators.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if not found:
        raise FileNotFoundError(
            "azurite not found: run `npm install` in the repo root (make setup does it)"
        )
    return found


@dataclass
class Azurite:
    host: str = "127.0.0.1"
    workdir: str | None = None  # None: in-memory, gone when stopped
    blob_port: int = 0
    queue_port: int = 0
    table_port: int = 0
    log_file: str | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @property
    def connection_string(self) -> str:
        # No trailing ';': azure-data-tables mis-parses one (see shared/reference/README.md).
        base = f"http://{self.host}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{DEV_ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{DEV_ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{DEV_ACCOUNT}"
        )

    @property
    def process(self) -> subprocess.Popen | None:
        """The running Azurite process (for supervisors that track pids), or None."""
        return self._proc

    def start(self, timeout_s: float = 30.0) -> "Azurite":
        self.blob_port = self.blob_port or free_port(self.host)
        self.queue_port = self.queue_port or free_port(self.host)
        self.table_port = self.table_port or free_port(self.host)
        args = [
            azurite_binary(),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--blobHost", self.host, "--blobPort", str(self.blob_port),
            "--queueHost", self.host, "--queuePort", str(self.queue_port),
            "--tableHost", self.host, "--tablePort", str(self.table_port),
        ]
        if self.workdir:
            Path(self.workdir).mkdir(parents=True, exist_ok=True)
            args += ["--location", self.workdir]
        else:
            # In-memory data; the temp dir keeps Azurite's debug/extent files out of the repo.
            self._tmp = tempfile.TemporaryDirectory(prefix="azurite-")
            args += ["--inMemoryPersistence"]
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.workdir or self._tmp.name,
        )
        try:
            for port in (self.blob_port, self.queue_port, self.table_port):
                wait_for_port(self.host, port, timeout_s)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "Azurite":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
