"""Exceptions that callers react to differently (HTTP status, CLI exit code).

Everything else propagates as the SDK raised it, chained with `raise ... from`.
"""


class AcrDeployError(Exception):
    """Base class: the message is safe to show to users (no secrets, no tokens)."""


class NotFoundError(AcrDeployError):
    """The app, revision or deployment does not exist (HTTP 404)."""


class ConflictError(AcrDeployError):
    """The request is valid but the current state forbids it now (HTTP 409)."""


class InvalidRequestError(AcrDeployError):
    """The request itself is malformed (HTTP 400)."""


class UnavailableError(AcrDeployError):
    """This build or configuration cannot do it at all, whatever the request (HTTP 501)."""
