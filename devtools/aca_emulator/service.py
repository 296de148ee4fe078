"""The emulated Container Apps service: state, lifecycle (start/stop/reset) and the state dump.

HTTP layers (arm.py, control_api.py, runtime.py) only parse requests and render answers; every state change
happens in ``Service`` methods under one lock. Time-based progress (provisioning delay) is applied lazily by
``settle()`` at the start of every request, which keeps the emulator deterministic and free of timers.
"""
from __future__ import annotations

import copy
import threading
from collections import deque

from . import revisions as rv
from . import store
from .apps import AppsMixin, clean_app_body, merge_patch  # noqa: F401 - re-exported (older imports)
from .environments import EnvironmentsMixin
from .metrics import RequestRecorder
from .operations import OperationsMixin
from .revision_ops import RevisionOpsMixin
from .runtime import Runtime, SmoothWRR, fqdn, url  # noqa: F401 - SmoothWRR re-exported
from .seed import apply_seed
from .serving import ServingMixin

DEFAULT_CONFIG = {
    "provisioning_delay": 0.05,  # seconds an LRO stays InProgress
    "min_in_progress_polls": 1,  # status polls answered InProgress before the delay may end an operation
    "retry_after": None,  # LRO Retry-After seconds; None = time left (fractional under 1 s)
    "page_size": 20,  # items per list page before a nextLink
    # seconds a crash-looping revision stays Activating before ActivationFailed (Kubernetes' default
    # progressDeadlineSeconds; the service does not document its own)
    "progress_deadline": 600.0,
    # seconds before an answered request shows in the metrics API (Azure's ingestion: a minute or more)
    "metrics_delay": 0.0,
}


class Service(EnvironmentsMixin, AppsMixin, RevisionOpsMixin, OperationsMixin, ServingMixin):
    """The whole emulated service. One re-entrant lock guards all state; every public entry point (ARM
    dispatch, control API, serving ports) takes it.

    The behaviour is split by subject into mixins, each readable on its own:
    environments.py (resource groups, managed environments), apps.py (container apps), revision_ops.py
    (revision get/actions), operations.py (long-running operations), serving.py (ports, behaviours, faults).
    """

    def __init__(self, host: str, ssl_context, state_file=None, provisioning_delay: float | None = None,
                 startup_seed: dict | None = None):
        self.lock = threading.RLock()
        self.state_file = state_file
        self.state = store.load(state_file)
        self.initial_delay = DEFAULT_CONFIG["provisioning_delay"] if provisioning_delay is None else provisioning_delay
        self.config = dict(DEFAULT_CONFIG, provisioning_delay=self.initial_delay)
        self.startup_seed = startup_seed
        self.behaviours: list[dict] = []
        self.faults: list[dict] = []
        self.arm_calls = 0
        self.request_log: deque = deque(maxlen=1000)
        self.counters: dict[tuple, int] = {}
        self.request_metrics = RequestRecorder()  # what the revisions answered: the metrics API's source
        self.wrr: dict[str, SmoothWRR] = {}
        self.runtime = Runtime(host, ssl_context, self.serve)
        self.rbac = None  # rbac.Rbac in RBAC mode (set by EmulatorServer)

    def start(self) -> None:
        with self.lock:
            for op in self.state["operations"].values():  # finish what a previous run left in flight
                if op["status"] == "InProgress":
                    self._finalize(op)
            if self.startup_seed:
                apply_seed(self, self.startup_seed)
            for app in list(self.state["apps"].values()):
                self._sync_servers(app)
            self._save()

    def stop(self) -> None:
        self.runtime.stop_all()

    def reset(self, reseed: bool = True) -> None:
        with self.lock:
            self.runtime.stop_all()
            self.state = store.empty_state()
            self.config = dict(DEFAULT_CONFIG, provisioning_delay=self.initial_delay)
            self.behaviours, self.faults = [], []
            self.arm_calls = 0
            self.request_log.clear()
            self.counters.clear()
            self.request_metrics.clear()
            self.wrr.clear()
            if reseed and self.startup_seed:
                apply_seed(self, self.startup_seed)
            self._save()

    def _save(self) -> None:
        store.save(self.state_file, self.state)

    def dump(self) -> dict:
        with self.lock:
            self.settle()
            apps = []
            for app in self.state["apps"].values():
                weights = rv.effective_weights(app)
                apps.append({
                    "id": store.app_id(app["sub"], app["rg"], app["name"]), "name": app["name"],
                    "resourceGroup": app["rg"], "subscriptionId": app["sub"],
                    "provisioningState": app["provisioningState"], "mode": rv.mode(app),
                    "tags": app["resource"].get("tags") or {},
                    "ingress": ("none" if not rv.has_ingress(app) else "internal" if rv.is_internal(app)
                                else "external"),
                    "latestRevisionName": app.get("latest"), "latestReadyRevisionName": app.get("latestReady"),
                    "fqdn": self.fqdn_of(app, app.get("appPort"), app["name"]), "url": url(app.get("appPort")),
                    "labels": {lbl: {"revision": name,
                                     "fqdn": self.fqdn_of(app, app["labelPorts"].get(lbl), f"{app['name']}---{lbl}"),
                                     "url": url(app["labelPorts"].get(lbl))}
                               for lbl, name in rv.labels(app).items()},
                    "traffic": weights,
                    "revisions": [dict(self.render_revision(app, r, weights)["properties"], name=r["name"],
                                       url=url(r.get("port")) if r["active"] else None,
                                       requests=self.counters.get((store.key(store.app_id(
                                           app["sub"], app["rg"], app["name"])), r["name"]), 0),
                                       restarts=r.get("restarts", 0), peakWeight=r.get("peakWeight", 0))
                                  for r in app["revisions"]],
                })
            return {
                "config": dict(self.config),
                "resourceGroups": list(self.state["resourceGroups"].values()),
                "environments": [self.render_env(e) for e in self.state["environments"].values()],
                "apps": apps,
                "operations": sorted(self.state["operations"].values(), key=lambda o: o["start"]),
                "behaviors": copy.deepcopy(self.behaviours),
                "faults": copy.deepcopy(self.faults),
                "armCalls": self.arm_calls,
                "armRequests": list(self.request_log),
            }
