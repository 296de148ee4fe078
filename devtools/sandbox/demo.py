"""`python -m devtools.sandbox demo` (what `make demo` runs): the whole pipeline, watched live.

1. `up` (Azurite, emulator, registry, bridge, function app);
2. push the samples with skopeo, in two waves (the broken image goes out once the release it
   must not replace is live):
     orders-api:1.5.0          a release      -> goes live on orders-api
     orders-api:1.6.0-rc.1     a pre-release  -> goes to orders-api-staging only
     payments-api:2.1.0        a release      -> canary 25 % -> 100 % on payments-api
     orders-api:1.5.1 broken   answers 500    -> smoke checks fail, never receives traffic
     payments-api:2.2.0 flaky  fails 40 % of its requests after its first 5: passes its smoke
                               checks, then the canary analysis of its request metrics rolls it back
     checkout-api:3.0.0        a release      -> live on checkout-api-staging, promoted to
                                                 checkout-api after a soak, waits for approval
                                                 (Teams and Slack are told: the local receiver),
                                                 the demo approves it through the API, it goes live
   while user traffic (a bounded load on payments-api's URL) feeds the request metrics;
3. show each deployment moving through its phases (the history API, polled), then the history
   table and what each app now serves (its own HTTPS URL);
4. check the expectations (exit status 1 if one fails) and stop everything (unless --keep).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from devtools.sandbox.load import Load
from devtools.sandbox.observe import TERMINAL, SandboxClient, StuckError
from devtools.sandbox.push import push
from devtools.sandbox.sandbox import Sandbox, SandboxError

PHASE_STYLE = {"succeeded": "bold green", "failed": "bold red", "rolled_back": "yellow",
               "superseded": "dim", "skipped": "dim"}
APPS = ("orders-api", "orders-api-staging", "payments-api", "payments-api-staging", "checkout-api-staging",
        "checkout-api")
APPROVER = "release-manager"


@dataclass
class Sample:
    ref: str
    variant: str
    app: str  # where it must land
    expect_phase: str
    story: str
    wave: int = 1
    digest: str = ""

    @property
    def repository(self) -> str:
        return self.ref.rpartition(":")[0]

    @property
    def tag(self) -> str:
        return self.ref.rpartition(":")[2]


def samples() -> list[Sample]:
    return [
        Sample("orders-api:1.5.0", "ok", "orders-api", "succeeded", "release: goes live"),
        Sample("orders-api:1.6.0-rc.1", "ok", "orders-api-staging", "succeeded", "pre-release: staging only"),
        Sample("payments-api:2.1.0", "ok", "payments-api", "succeeded", "release: canary 25% -> 100%"),
        Sample("orders-api:1.5.1", "broken", "orders-api", "failed", "broken: smoke fails, no traffic", wave=2),
        Sample("payments-api:2.2.0", "flaky", "payments-api", "rolled_back",
               "fails under load: smoke passes, analysis rolls back", wave=2),
        Sample("checkout-api:3.0.0", "ok", "checkout-api-staging", "succeeded", "release: staging first"),
        # Not pushed: promoted from staging, then approved (wave 3 is the approval, `_approve`).
        Sample("checkout-api:3.0.0", "ok", "checkout-api", "succeeded", "promoted, approved", wave=3),
    ]


def _key(sample: Sample) -> str:
    return f"{sample.ref}@{sample.app}"


def _short(text: Any, limit: int = 90) -> str:
    """Reasons can be long (they quote the failing answer); tables show their start."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(rows: list[Sample], seen: dict[str, dict[str, Any]], started: float) -> Table:
    table = Table(title=f"deployments (live, {time.monotonic() - started:4.0f}s)", expand=False)
    for column in ("image", "variant", "app", "phase", "revision", "reason"):
        table.add_column(column, no_wrap=column != "reason", overflow="fold")
    for sample in rows:
        d = seen.get(_key(sample)) or {}
        phase = str(d.get("phase") or ("pushed" if sample.digest else "waiting"))
        table.add_row(sample.ref, sample.variant, sample.app, f"[{PHASE_STYLE.get(phase, 'cyan')}]{phase}[/]",
                      str(d.get("revision") or ""), _short(d.get("reason")))
    return table


def _watch(client: SandboxClient, rows: list[Sample], wave: list[Sample], seen: dict[str, dict],
           live: Live | None, console: Console, started: float, timeout_s: float,
           last_phase: dict[str, str], until: frozenset[str] = TERMINAL) -> None:
    """Poll until every sample of the wave is in `until` (terminal); print phase changes when not on a TTY."""
    deadline = time.monotonic() + timeout_s
    while True:
        items = client.deployments()
        for sample in rows:
            found = client.find(sample.repository, sample.tag, sample.app, items)
            if found:
                seen[_key(sample)] = found
                phase = str(found.get("phase"))
                if live is None and last_phase.get(_key(sample)) != phase:
                    console.print(f"  {sample.ref:24} -> {sample.app:20} {phase:17} {_short(found.get('reason'))}")
                last_phase[_key(sample)] = phase
        if live is not None:
            live.update(_table(rows, seen, started))
        if all(str((seen.get(_key(s)) or {}).get("phase")) in until for s in wave):
            return
        if time.monotonic() > deadline:
            for sample in wave:
                if str((seen.get(_key(sample)) or {}).get("phase")) not in until:
                    raise StuckError(client.stuck_message(sample.repository, sample.tag, sample.app,
                                                          seen.get(_key(sample)), timeout_s))
        time.sleep(0.4)


def _history(client: SandboxClient) -> Table:
    table = Table(title="history (GET /api/deployments)")
    for column in ("created", "app", "image", "phase", "revision", "rule", "reason"):
        table.add_column(column, no_wrap=column != "reason", overflow="fold")
    for d in sorted(client.deployments(), key=lambda d: str(d.get("created_at") or "")):
        phase = str(d.get("phase"))
        table.add_row(str(d.get("created_at") or "")[11:19], str(d.get("app")), f"{d.get('repository')}:{d.get('tag')}",
                      f"[{PHASE_STYLE.get(phase, 'cyan')}]{phase}[/]", str(d.get("revision") or ""),
                      str(d.get("rule") or ""), _short(d.get("reason"), 70))
    return table


def _serving(client: SandboxClient, digests: dict[str, str]) -> tuple[Table, dict[str, list[dict]]]:
    table = Table(title="what each app serves (GET https://<ingress fqdn>/, 4 requests)")
    for column in ("app", "url", "status", "revision", "image"):
        table.add_column(column, no_wrap=True)
    answers: dict[str, list[dict]] = {}
    for app in APPS:
        try:
            fqdn = client.app_fqdn(app)
            answers[app] = client.serves(app, requests=4)
        except Exception as exc:  # noqa: BLE001 - shown in the table, judged by the checks
            answers[app] = [{"status": "error", "revision": str(exc)}]
            fqdn = "?"
        for answer in _distinct(answers[app]):
            image = str(answer.get("image") or "")
            label = digests.get(image.rpartition("@")[2], image.rpartition("/")[2])
            table.add_row(app, f"https://{fqdn}", str(answer.get("status")), str(answer.get("revision")), label)
    return table, answers


def _distinct(answers: list[dict]) -> list[dict]:
    out, keys = [], set()
    for answer in answers:
        key = (answer.get("status"), answer.get("revision"))
        if key not in keys:
            keys.add(key)
            out.append(answer)
    return out


def check_expectations(rows: list[Sample], seen: dict[str, dict], answers: dict[str, list[dict]]) -> list[str]:
    """What the demo promises, each as a failure message when it does not hold."""
    failures = []
    by_ref = {s.ref: s for s in rows}
    for sample in rows:
        d = seen.get(_key(sample)) or {}
        if str(d.get("phase")) != sample.expect_phase:
            failures.append(f"{sample.ref} -> {sample.app}: expected {sample.expect_phase}, got "
                            f"{d.get('phase') or 'no deployment'} ({d.get('reason') or '-'})")
    broken = by_ref["orders-api:1.5.1"]
    reason = str((seen.get(_key(broken)) or {}).get("reason") or "").lower()
    if "smoke" not in reason and "500" not in reason:
        failures.append(f"{broken.ref}: the failure reason does not name the smoke check: {reason or '-'}")

    def served(app: str) -> set[str]:
        return {str(a.get("image") or "").rpartition("@")[2] for a in answers.get(app, [])}

    expectations = [
        ("orders-api", by_ref["orders-api:1.5.0"], "the release must be live"),
        ("orders-api-staging", by_ref["orders-api:1.6.0-rc.1"], "the pre-release must be live on staging"),
        ("payments-api", by_ref["payments-api:2.1.0"], "the canary must end at 100 %"),
        ("checkout-api-staging", by_ref["checkout-api:3.0.0"], "the release must be live on staging"),
        ("checkout-api", by_ref["checkout-api:3.0.0"], "the approved promotion must be live"),
    ]
    for app, sample, why in expectations:
        if served(app) != {sample.digest}:
            failures.append(f"{app} serves {sorted(served(app))}, not {sample.ref} [{sample.digest[:19]}]: {why}")
    flaky = by_ref["payments-api:2.2.0"]
    flaky_reason = str((seen.get(_key(flaky)) or {}).get("reason") or "")
    if "canary analysis" not in flaky_reason:
        failures.append(f"{flaky.ref}: the rollback reason does not name the canary analysis: {flaky_reason or '-'}")
    if broken.digest in served("orders-api"):
        failures.append("orders-api served the broken image: it must never receive traffic")
    if by_ref["orders-api:1.6.0-rc.1"].digest in served("orders-api"):
        failures.append("orders-api served the pre-release: pre-releases must stay on staging")
    if any(a.get("status") != 200 for app in ("orders-api", "orders-api-staging", "payments-api", "checkout-api")
           for a in answers.get(app, [])):
        failures.append("an app answered with an error to its users")
    promoted = seen.get("checkout-api:3.0.0@checkout-api") or {}
    if ((promoted.get("data") or {}).get("controls") or {}).get("approved", {}).get("by", "").split(" ")[0] != APPROVER:
        failures.append(f"checkout-api: the approval by {APPROVER} is not recorded")
    return failures


def _approve(client: SandboxClient, rows: list[Sample], seen: dict[str, dict], live: Live | None,
             console: Console, started: float, timeout_s: float, last_phase: dict[str, str]) -> list[str]:
    """Wave 3: the promotion waits for approval; show what chat got, approve it, watch it go live."""
    wave = [s for s in rows if s.wave == 3]
    for sample in wave:
        sample.digest = next(s.digest for s in rows if s.ref == sample.ref and s.wave != 3)
    _watch(client, rows, wave, seen, live, console, started, timeout_s, last_phase,
           until=frozenset({"awaiting_approval", *TERMINAL}))
    failures = []
    for sample in wave:
        d = seen.get(_key(sample)) or {}
        if d.get("phase") != "awaiting_approval":
            return [f"{sample.ref} -> {sample.app}: expected awaiting_approval, got {d.get('phase')}"]
        heard = [m for m in client.chat_messages() if "waiting for approval" in json.dumps(m["body"])]
        hooks = sorted({m["hook"] for m in heard})
        console.print(f"[bold]{sample.ref} on {sample.app} waits for approval[/]; chat got it on {', '.join(hooks)}; "
                      f"approving as {APPROVER} (POST /api/deployments/{d['id']}/approve)")
        if hooks != ["slack-releases", "teams-releases"]:
            failures.append(f"the approval request did not reach Teams and Slack (got {hooks})")
        status, body = client.control(d["id"], "approve", "staging soaked; the demo approves", by=APPROVER,
                                      app=sample.app)
        if status != 202:
            failures.append(f"approve answered {status}: {body}")
    _watch(client, rows, wave, seen, live, console, started, timeout_s, last_phase)
    return failures


def run_demo(directory: Path, *, rules_file: str | None = None, schema: str = "eventgrid",
             keep: bool = False, timeout_s: float = 120.0, console: Console | None = None) -> int:
    if console is None:
        console = Console()
        if not console.is_terminal:  # CI logs: wide enough for the tables, no live redraws
            console = Console(width=160)
    sandbox = Sandbox(Path(directory), rules_file=Path(rules_file) if rules_file else None, schema=schema,
                      echo=lambda line: console.print(f"[dim]{line}[/]"))
    console.rule("acr-deploy sandbox demo")
    try:
        endpoints = sandbox.up()
    except SandboxError as exc:
        console.print(f"[bold red]the sandbox did not start:[/] {exc}")
        return 2
    rows = samples()
    failures: list[str] = []
    try:
        with SandboxClient(endpoints) as client:
            mode = endpoints["registry_mode"]
            console.print(f"registry {endpoints['registry']} ({mode}), function app {endpoints['function_url']}, "
                          f"events: {endpoints['schema']}")
            seen: dict[str, dict] = {}
            last_phase: dict[str, str] = {}
            started = time.monotonic()
            interactive = console.is_terminal
            live = Live(_table(rows, seen, started), console=console, refresh_per_second=4) if interactive else None
            if live:
                live.start()
            # Users of payments-api, whose canaries are judged on their request metrics.
            load = Load(client.app_fqdn("payments-api"), endpoints["arm_ca"]).start()
            try:
                for wave_no in (1, 2):
                    wave = [s for s in rows if s.wave == wave_no]
                    for sample in wave:
                        result = push(sample.ref, sample.variant, sandbox.dir, wait_delivery_s=0,
                                      echo=(lambda line: None) if live else (lambda line: console.print(f"  {line}")))
                        sample.digest = result.image.digest
                    _watch(client, rows, wave, seen, live, console, started, timeout_s, last_phase)
                approval_failures = _approve(client, rows, seen, live, console, started, timeout_s, last_phase)
            finally:
                answered = load.stop()
                if live:
                    live.stop()
            console.print(f"load on payments-api: {sum(answered.values())} requests, by status {dict(answered)}")
            console.print(_history(client))
            digests = {s.digest: f"{s.ref} ({s.variant})" for s in rows}
            serving, answers = _serving(client, digests)
            console.print(serving)
            failures = approval_failures + check_expectations(rows, seen, answers)
    except StuckError as exc:
        failures = [str(exc)]
    except KeyboardInterrupt:
        failures = ["interrupted"]
    finally:
        if keep:
            console.print(f"[bold]sandbox left running[/]: endpoints in {sandbox.endpoints_path}; "
                          "stop it with `python -m devtools.sandbox down`")
        else:
            sandbox.down()
            console.print("[dim]sandbox stopped[/]")
    if failures:
        console.print("[bold red]demo expectations failed:[/]")
        for failure in failures:
            console.print(f"  - {failure}")
        return 1
    console.print("[bold green]demo passed:[/] the release is live, the pre-release went to staging, the canary "
                  "completed, the broken image failed its smoke checks without receiving traffic, the flaky "
                  "canary passed its smoke checks but was rolled back by the analysis of its request metrics, and "
                  "the checkout release went from staging to production once approved")
    return 0
