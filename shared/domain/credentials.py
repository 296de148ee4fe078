"""Names that carry credentials in an HTTP request: smoke-check headers and query parameters (pure).

Smoke checks are stored with every deployment record (and shown by the API), so the rules loader
refuses a check that names one, and `redact_check` masks any that reach a record anyway (a record
written before the loader knew a name, or settings built in code).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

REDACTED = "[redacted]"

# Header names: anything about auth, keys, tokens, secrets, sessions or signatures. Generous on
# purpose: a refused harmless header costs a rename, a stored credential costs a rotation.
CREDENTIAL_HEADER = re.compile(
    r"(?i)auth|cookie|token|secret|passw|credential|session|signature|api[-_]?key|(^|[-_])key$|"
    r"^ocp-apim-subscription-key$"
)
# Query parameter names: Azure Functions keys (`code`), SAS (`sig`, with `sv`), and the usual suspects.
CREDENTIAL_PARAMS = frozenset({
    "code", "sig", "signature", "key", "apikey", "api-key", "api_key", "subscription-key", "token",
    "access_token", "id_token", "refresh_token", "auth", "password", "passwd", "pwd", "secret",
    "client_secret", "private_key", "session", "sessionid", "jwt",
})
_PARAM_WORDS = re.compile(r"(?i)token|secret|passw|api[-_]?key|signature|credential")


def is_credential_header(name: str) -> bool:
    return bool(CREDENTIAL_HEADER.search(name))


def _param_name(raw: str) -> str:
    return unquote_plus(raw.split("=", 1)[0]).strip().lower()


def credential_params(path: str) -> list[str]:
    """Names of query parameters in `path` that carry credentials (decoded, in order)."""
    if "?" not in path:
        return []
    query = path.split("?", 1)[1].split("#", 1)[0]
    names = [_param_name(part) for part in re.split(r"[&;]", query) if part]
    return [n for n in names if n in CREDENTIAL_PARAMS or _PARAM_WORDS.search(n)]


def redact_path(path: str) -> str:
    """`path` with the value of every credential query parameter replaced by REDACTED."""
    if not credential_params(path):
        return path
    head, query = path.split("?", 1)
    query, hash_mark, fragment = query.partition("#")
    parts = []
    for part in re.split(r"([&;])", query):
        name = _param_name(part) if part not in ("&", ";") else ""
        if name and (name in CREDENTIAL_PARAMS or _PARAM_WORDS.search(name)):
            part = part.split("=", 1)[0] + "=" + REDACTED
        parts.append(part)
    return head + "?" + "".join(parts) + hash_mark + fragment


def redact_headers(headers: list | tuple) -> list[list[str]]:
    """(name, value) pairs with credential values replaced by REDACTED."""
    return [[name, REDACTED if is_credential_header(name) else value] for name, value in headers]
