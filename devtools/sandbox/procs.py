"""Child processes of the sandbox: started in their own process group, logged to a file, recorded in
a pid file, and stopped with SIGTERM then SIGKILL (bounded).

`up` returns while its children keep running, so `down` (another process) finds them through the
pid files. Before signalling a pid it checks that the process's command line still names the
sandbox directory: a stale pid file whose pid the OS reused for something else is never killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Child:
    name: str
    pid: int
    log: Path
    popen: subprocess.Popen | None = None  # set when this process started it (it can reap it)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # gone
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


class ProcessTable:
    """The pid files of one sandbox directory."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.pid_dir = self.root / "pids"
        self.log_dir = self.root / "logs"
        self._children: dict[str, Child] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def spawn(self, name: str, args: list[str], *, env: dict[str, str] | None = None,
              cwd: str | Path | None = None) -> Child:
        """Start `args` detached from our terminal's signals, output appended to logs/NAME.log."""
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(name)
        with open(log, "ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=str(cwd) if cwd else None, start_new_session=True,
            )
        return self.adopt(name, popen.pid, popen=popen)

    def adopt(self, name: str, pid: int, popen: subprocess.Popen | None = None) -> Child:
        """Record a process started elsewhere (e.g. devtools.azurite) under this table."""
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        (self.pid_dir / f"{name}.pid").write_text(f"{pid}\n")
        child = Child(name, pid, self.log_path(name), popen)
        self._children[name] = child
        return child

    def recorded(self) -> dict[str, int]:
        """name -> pid of every pid file (running or not)."""
        out = {}
        if self.pid_dir.is_dir():
            for path in sorted(self.pid_dir.glob("*.pid")):
                try:
                    out[path.stem] = int(path.read_text().strip())
                except ValueError:
                    continue
        return out

    def ours(self, pid: int) -> bool:
        """Alive and still the process we started (its command line names our directory)."""
        return alive(pid) and str(self.root) in _cmdline(pid)

    def running(self) -> dict[str, int]:
        return {name: pid for name, pid in self.recorded().items() if self.ours(pid)}

    def exited(self, name: str) -> int | None:
        """Exit status of a child this process started, if it has exited (else None)."""
        child = self._children.get(name)
        if child and child.popen:
            return child.popen.poll()
        return None

    def stop_all(self, order: list[str] | None = None, term_wait_s: float = 10.0,
                 kill_wait_s: float = 5.0) -> list[str]:
        """SIGTERM every recorded process group (in `order` first), wait, SIGKILL what remains,
        remove the pid files. Returns a line per process for the user."""
        recorded = self.recorded()
        names = [n for n in (order or []) if n in recorded] + [n for n in recorded if n not in (order or [])]
        report, signalled = [], {}
        for name in names:
            pid = recorded[name]
            if not self.ours(pid):
                report.append(f"{name}: not running")
                continue
            _signal_group(pid, signal.SIGTERM)
            signalled[name] = pid
        deadline = time.monotonic() + term_wait_s
        while signalled and time.monotonic() < deadline:
            self._reap()
            if not any(alive(pid) for pid in signalled.values()):
                break
            time.sleep(0.05)
        for name, pid in signalled.items():
            if alive(pid):
                _signal_group(pid, signal.SIGKILL)
                end = time.monotonic() + kill_wait_s
                while alive(pid) and time.monotonic() < end:
                    self._reap()
                    time.sleep(0.05)
                report.append(f"{name}: killed (pid {pid}; SIGTERM was not enough)")
            else:
                report.append(f"{name}: stopped (pid {pid})")
            # the group may hold helpers (npm's node, a shell) that outlived the leader
            _signal_group(pid, signal.SIGKILL)
        self._reap()
        for name in names:
            (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        self._children.clear()
        return report

    def _reap(self) -> None:
        for child in self._children.values():
            if child.popen is not None:
                child.popen.poll()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # children are session leaders: pgid == pid
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
