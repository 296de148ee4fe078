"""ARM-shaped errors: ``{"error": {"code": ..., "message": ...}}`` with an HTTP status."""
from __future__ import annotations


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


def not_found(kind: str, name: str, rg: str | None = None) -> ArmError:
    where = f" under resource group '{rg}'" if rg else ""
    return ArmError(404, "ResourceNotFound", f"The Resource '{kind}/{name}'{where} was not found.")


def conflict(code: str, message: str) -> ArmError:
    return ArmError(409, code, message)
