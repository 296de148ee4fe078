"""Settings for CLI commands: the environment, over `local.settings.json` `Values` when present.

`func start` reads local.settings.json; a release manager running `acr-deploy` in the same
directory expects the same configuration, with their shell's variables taking precedence.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

from shared.settings import Settings

LOCAL_SETTINGS = "local.settings.json"


def load_env(cwd: str | Path | None = None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`Values` of ./local.settings.json (if any), overridden by the environment.
    Raises ValueError naming the file when it is not valid JSON."""
    env = os.environ if env is None else env
    path = Path(cwd or Path.cwd()) / LOCAL_SETTINGS
    merged: dict[str, str] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read settings: {exc}") from exc
        values = data.get("Values") if isinstance(data, dict) else None
        if values is not None and not isinstance(values, dict):
            raise ValueError(f"{path}: 'Values' must be an object")
        for key, value in (values or {}).items():
            if value is None:
                continue
            merged[str(key)] = value if isinstance(value, str) else json.dumps(value)
    merged.update(env)
    return merged


def load_settings(cwd: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_env(load_env(cwd, env))
