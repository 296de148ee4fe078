"""What the dev host reads before it loads the app: `local.settings.json` and `host.json`.

Mirrors what `func start` takes from them: `Values` become environment variables (before the app
is imported), `Host.LocalHttpPort` is the default port, and host.json gives the HTTP route prefix
and the queue trigger options. Anything else in those files is ignored, as func start ignores
settings it does not know.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

DEFAULT_PORT = 7071  # func start's default


class ConfigError(ValueError):
    """A settings or host.json file the dev host cannot use (the CLI prints it and exits)."""


@dataclass(frozen=True)
class LocalSettings:
    values: dict[str, str] = field(default_factory=dict)
    local_http_port: int | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "settings") -> "LocalSettings":
        """Accept either the whole local.settings.json shape ({"Values": {...}, "Host": {...}})
        or a plain mapping of Values (handy for tests and the sandbox)."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{source}: expected a JSON object")
        if raw.get("IsEncrypted") is True:
            raise ConfigError(
                f"{source}: IsEncrypted is true; the dev host cannot decrypt it "
                "(run `func settings decrypt` or write plain values)"
            )
        full_shape = isinstance(raw.get("Values"), Mapping)
        values_raw = raw["Values"] if full_shape else raw
        values: dict[str, str] = {}
        for name, value in values_raw.items():
            if value is None:
                continue
            if isinstance(value, (dict, list)):
                raise ConfigError(f"{source}: Values.{name} must be a string, not {type(value).__name__}")
            # func start stores every value as a string; JSON true/5 become "True"/"5" there too,
            # but lower-case booleans are what apps expect to read back.
            values[str(name)] = str(value).lower() if isinstance(value, bool) else str(value)
        port = None
        host = raw.get("Host") if full_shape else None
        if isinstance(host, Mapping) and host.get("LocalHttpPort") not in (None, ""):
            try:
                port = int(host["LocalHttpPort"])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{source}: Host.LocalHttpPort must be a port number") from exc
        return cls(values=values, local_http_port=port)

    @classmethod
    def from_file(cls, path: str | Path) -> "LocalSettings":
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: not found (copy local.settings.sample.json to it)") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
        return cls.from_dict(raw, source=str(path))


def parse_timespan(value: Any, *, name: str) -> float:
    """A .NET TimeSpan as host.json writes it ("00:00:05", "1.00:00:00", "00:00:00.500") -> seconds.
    Plain numbers are taken as seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"\s*(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*", str(value))
    if not match:
        raise ConfigError(f"host.json {name}: {value!r} is not a TimeSpan like 00:00:05")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, with the Functions defaults where a value is missing."""

    batch_size: int = 16
    new_batch_threshold: int | None = None  # None: batch_size // 2, as the host does
    max_polling_interval_s: float = 60.0
    visibility_timeout_s: float = 0.0  # delay before a failed message is visible again
    max_dequeue_count: int = 5
    message_encoding: str = "base64"  # or "none"

    @property
    def threshold(self) -> int:
        return self.batch_size // 2 if self.new_batch_threshold is None else self.new_batch_threshold

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "QueueOptions":
        def _int(key: str, default: int, low: int, high: int) -> int:
            value = raw.get(key, default)
            try:
                number = int(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"host.json queues.{key}: {value!r} is not an integer") from exc
            if not low <= number <= high:
                raise ConfigError(f"host.json queues.{key}: {number} is outside {low}..{high}")
            return number

        encoding = str(raw.get("messageEncoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise ConfigError(f"host.json queues.messageEncoding: {encoding!r} is not base64 or none")
        threshold = raw.get("newBatchThreshold")
        return cls(
            batch_size=_int("batchSize", 16, 1, 32),  # 32: the Storage API's maximum per get
            new_batch_threshold=None if threshold is None else _int("newBatchThreshold", 0, 0, 1000),
            max_polling_interval_s=max(
                0.1, parse_timespan(raw.get("maxPollingInterval", "00:01:00"), name="queues.maxPollingInterval")
            ),
            visibility_timeout_s=parse_timespan(
                raw.get("visibilityTimeout", "00:00:00"), name="queues.visibilityTimeout"
            ),
            max_dequeue_count=_int("maxDequeueCount", 5, 1, 1000),
            message_encoding=encoding,
        )


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "HostConfig":
        extensions = raw.get("extensions") or {}
        http = extensions.get("http") or {}
        prefix = http.get("routePrefix", "api")
        return cls(
            route_prefix=str(prefix if prefix is not None else "").strip("/"),
            queues=QueueOptions.from_dict(extensions.get("queues") or {}),
        )

    @classmethod
    def from_app_dir(cls, app_dir: str | Path) -> "HostConfig":
        path = Path(app_dir) / "host.json"
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
        return cls.from_dict(raw)


def resolve_setting(text: str, *, what: str, env: Mapping[str, str] | None = None) -> str:
    """`%NAME%` -> the app setting NAME, as the host resolves binding expressions
    (timer schedules, queue names)."""
    env = os.environ if env is None else env
    match = re.fullmatch(r"\s*%([^%]+)%\s*", text)
    if not match:
        return text
    value = env.get(match.group(1))
    if not value:
        raise ConfigError(f"{what} {text!r}: app setting {match.group(1)!r} is not set")
    return value
