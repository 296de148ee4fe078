"""Composition root: the one place that picks adapters from settings and wires services.

Everything is built lazily on first use and cached per process (a Functions worker keeps the
process warm between invocations, so SDK clients and connection pools are reused).
`reset_container()` exists for tests that change settings.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from shared.settings import Settings

if TYPE_CHECKING:  # the adapters and services are imported on first use, not at start-up
    from azure.core.credentials import TokenCredential

    from shared.adapters.chat import ChatNotifier
    from shared.adapters.containerapps import ContainerAppsAdapter
    from shared.adapters.monitor import MonitorMetricsAdapter
    from shared.adapters.queues import StorageRolloutQueue
    from shared.adapters.smoke import HttpSmokeProbe
    from shared.adapters.tables import TableStore
    from shared.ports import OutcomePublisher
    from shared.http_api import HistoryApi
    from shared.services.drift import DriftReconciler
    from shared.services.intake import IntakeService
    from shared.services.retention import RetentionPurger
    from shared.services.rollout import RolloutWorker
    from shared.services.rulesource import RuleBook
    from shared.telemetry import Telemetry


class Container:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()

    # ---- adapters -----------------------------------------------------------------------
    @cached_property
    def store(self) -> TableStore:  # a DeploymentStore (DeploymentRepository + HistoryReader)
        from shared.adapters.tables import TableStore

        # defer_index: intake stays at 3 storage round trips per accepted
        # event; the cross-app index / apps registry rows follow with the worker's first step.
        return TableStore.from_settings(self.settings, defer_index=True)

    @cached_property
    def queue(self) -> StorageRolloutQueue:  # a RolloutQueue
        from shared.adapters.queues import StorageRolloutQueue

        return StorageRolloutQueue.from_settings(self.settings)

    @cached_property
    def credential(self) -> TokenCredential:
        from shared.adapters.credentials import get_arm_credential

        return get_arm_credential(self.settings)

    @cached_property
    def container_apps(self) -> ContainerAppsAdapter:  # a ContainerAppsPort and an AppDirectory
        from shared.adapters.containerapps import ContainerAppsAdapter

        return ContainerAppsAdapter.from_settings(self.settings, self.credential)

    @cached_property
    def probe(self) -> HttpSmokeProbe:  # a SmokeProbe
        from shared.adapters.smoke import HttpSmokeProbe

        return HttpSmokeProbe(ca_bundle=self.settings.arm_ca_bundle)

    @cached_property
    def publisher(self) -> OutcomePublisher:  # the CloudEvents topic, the rules' chat webhooks, promotion
        from shared.adapters.chat import FanOutPublisher
        from shared.adapters.publisher import build_publisher
        from shared.domain.model import utcnow
        from shared.services.promotion import Promoter

        # A success also promotes the digest where its rule says (`promote:`), through intake.
        return FanOutPublisher(build_publisher(self.settings), self.chat,
                               Promoter(lambda: self.intake, self.store, utcnow))

    @cached_property
    def chat(self) -> ChatNotifier:  # the rules' Teams / Slack webhooks
        import os

        from shared.adapters.chat import ChatNotifier

        # Webhook URLs are app settings (Key Vault references in Azure), read when a message goes out.
        return ChatNotifier(os.environ.get)

    @cached_property
    def request_metrics(self) -> MonitorMetricsAdapter:  # RequestMetrics (Azure Monitor): canary analysis
        from shared.adapters.monitor import MonitorMetricsAdapter

        return MonitorMetricsAdapter.from_settings(self.settings, self.credential)

    @cached_property
    def telemetry(self) -> Telemetry:  # installed as the process's by get_container(); off: nothing imported
        from shared import telemetry

        return telemetry.from_settings(self.settings)

    # ---- services -----------------------------------------------------------------------
    @cached_property
    def rules(self) -> RuleBook:  # the loaded rule set (fails loudly at start-up when broken)
        from shared.services.rulesource import RuleBook

        # Tag discovery needs ARM; without discovery resource groups it is off, so don't build it.
        directory = self.container_apps if self.settings.discovery_resource_groups else None
        return RuleBook.from_settings(self.settings, directory=directory)

    @cached_property
    def intake(self) -> IntakeService:
        from shared.services.intake import IntakeService

        return IntakeService(
            settings=self.settings, rules=self.rules, store=self.store, queue=self.queue
        )

    @cached_property
    def rollout(self) -> RolloutWorker:
        from shared.services.intake import ensure_recorded
        from shared.services.rollout import RolloutWorker

        store = self.store
        return RolloutWorker(
            store=store,
            queue=self.queue,
            apps=self.container_apps,
            probe=self.probe,
            publisher=self.publisher,
            recover=lambda deployment: ensure_recorded(store, deployment),
            metrics=self.request_metrics,
        )

    @cached_property
    def drift(self) -> DriftReconciler:
        from shared.domain.model import Deployment, Target
        from shared.services.drift import REPAIR_REQUESTER, DriftReconciler

        rollout = self.rollout

        def repair(target: Target, revision: str, reason: str) -> Deployment:
            return rollout.request_rollback(target.app, revision, target.resource_group,
                                            requested_by=REPAIR_REQUESTER, why=reason)

        return DriftReconciler(self.store, self.container_apps, repair, notify=self.chat)

    @cached_property
    def retention(self) -> RetentionPurger:
        from shared.services.retention import RetentionPurger

        return RetentionPurger(self.store, self.settings.retention_days)

    @cached_property
    def api(self) -> HistoryApi:
        from shared.http_api import HistoryApi

        # rollout passed lazily (a provider): reading history must not need the rollout's ARM wiring.
        return HistoryApi(store=self.store, rollout=lambda: self.rollout, settings=self.settings)


_lock = threading.Lock()
_container: Container | None = None


def get_container() -> Container:
    global _container
    with _lock:
        if _container is None:
            from shared import telemetry

            _container = Container()
            telemetry.install(_container.telemetry)
        return _container


def reset_container(container: Container | None = None) -> None:
    """Tests: drop the cached wiring (after changing settings), or install a prepared one."""
    global _container
    with _lock:
        _container = container
