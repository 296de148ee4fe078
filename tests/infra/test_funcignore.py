"""`.funcignore` decides what `azd deploy` ships: it must leave out the dev tooling and keep every
file the function app reads at run time (a 404 for /api/openapi.json in Azure was such a miss)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RUNTIME = [  # read by the deployed app
    "function_app.py", "host.json", "requirements.txt",
    "shared/openapi.yaml", "shared/history_page.html", "shared/http_api.py",
]
DEV_ONLY = ["tests/unit/test_events.py", "devtools/host/__main__.py", "infra/main.bicep",
            "benchmarks/rollout.py", "node_modules/azurite/package.json", ".venv/bin/python",
            "local.settings.json", ".test-output/browser/01-list.png"]


def _patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str) -> bool:
    """gitignore-style enough for our patterns: `dir/` excludes the folder, globs match names."""
    for pattern in _patterns():
        assert not pattern.startswith("!"), "negations are not used (tools differ on them)"
        if pattern.endswith("/"):
            if path.startswith(pattern) or f"/{pattern}" in f"/{path}":
                return True
        elif fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern):
            return True
    return False


def test_runtime_files_are_shipped():
    for path in RUNTIME:
        assert (ROOT / path).exists(), path
        assert not _ignored(path), f"{path} is needed at run time but .funcignore leaves it out"


def test_dev_tooling_is_left_out():
    for path in DEV_ONLY:
        assert _ignored(path), f"{path} would be deployed"


def test_the_api_reads_its_document_from_inside_the_package():
    from shared.http_api import OPENAPI_PATH

    assert OPENAPI_PATH.resolve().is_relative_to((ROOT / "shared").resolve())
