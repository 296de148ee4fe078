"""Local Azure Container Apps emulator (ARM Microsoft.App 2026-07-01) for tests and development.

See docs/emulator.md. Public API: EmulatorServer (in-process server), EmulatorControl (control API client).
"""
from .control import EmulatorControl, EmulatorControlError
from .rbac import RoleAssignment, actions_from_bicep
from .server import EmulatorServer
from .store import API_VERSION, DEFAULT_SUBSCRIPTION

__all__ = ["EmulatorServer", "EmulatorControl", "EmulatorControlError", "API_VERSION", "DEFAULT_SUBSCRIPTION",
           "RoleAssignment", "actions_from_bicep"]
