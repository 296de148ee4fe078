"""Shared helpers for the infra tests: parse Bicep with pycep and walk its JSON.

pycep turns a .bicep file into JSON (`parameters`, `variables`, `resources`, `modules`, `outputs`).
Expressions stay symbolic: `{"function": {...}}`, `{"operator": {...}}`, a bare string is either a
literal or a name (pycep does not tell them apart), conditional/loop resources are wrapped as
`{"condition": ..., "config": ...}` / `{"loop_type": ..., "config": ...}`. The helpers below unwrap
just enough of that for the shape tests; nothing here evaluates ARM.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.lru_cache(maxsize=None)
def _parse_cached(path_str: str) -> str:
    from pycep import BicepParser

    return json.dumps(BicepParser().parse(file_path=Path(path_str)))


def parse(path: Path | str) -> dict[str, Any]:
    """Parsed Bicep file (a fresh copy each call, so tests cannot corrupt each other)."""
    path = Path(path)
    if not path.is_absolute():
        path = INFRA / path
    return json.loads(_parse_cached(str(path)))


@dataclass
class Decl:
    """A resource or module declaration with its condition / loop unwrapped."""

    symbol: str
    type: str  # resource type, or the module path for modules
    body: dict[str, Any]
    condition: Any = None
    loop: Any = None
    existing: bool = False


def unwrap(config: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    condition = loop = None
    while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
        if config.get("loop_type") is not None:
            loop = config["loop_type"]
        if config.get("condition") is not None:
            condition = config["condition"]
        config = config["config"]
    return config, condition, loop


def resources(parsed: dict[str, Any], type_: str | None = None) -> list[Decl]:
    out = []
    for symbol, res in (parsed.get("resources") or {}).items():
        if type_ is not None and res["type"].lower() != type_.lower():
            continue
        body, condition, loop = unwrap(res["config"])
        out.append(Decl(symbol, res["type"], body, condition, loop, bool(res.get("existing"))))
    return out


def resource(parsed: dict[str, Any], symbol: str) -> Decl:
    res = parsed["resources"][symbol]
    body, condition, loop = unwrap(res["config"])
    return Decl(symbol, res["type"], body, condition, loop, bool(res.get("existing")))


def modules(parsed: dict[str, Any]) -> list[Decl]:
    out = []
    for symbol, mod in (parsed.get("modules") or {}).items():
        body, condition, loop = unwrap(mod["config"])
        out.append(Decl(symbol, mod["detail"]["path"], body, condition, loop))
    return out


def module(parsed: dict[str, Any], symbol: str) -> Decl:
    return next(m for m in modules(parsed) if m.symbol == symbol)


def accessor(node: Any) -> str | None:
    """`a.b.c` for a property-accessor chain (or a bare name), else None."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "operator" in node and node["operator"]["type"] == "property_accessor":
        ops = node["operator"]["operands"]
        left, right = accessor(ops["operand_1"]), accessor(ops["operand_2"])
        if left is None or right is None:
            return None
        return f"{left}.{right}"
    return None


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def variable(parsed: dict[str, Any], name: str) -> Any:
    return parsed["variables"][name]["value"]


def object_keys(node: Any, parsed: dict[str, Any]) -> set[str]:
    """Keys of every object literal an expression can evaluate to (through union(), ?:, vars)."""
    if isinstance(node, str):
        if node in (parsed.get("variables") or {}):
            return object_keys(variable(parsed, node), parsed)
        return set()
    if isinstance(node, dict):
        if set(node) == {"function"}:
            keys: set[str] = set()
            for arg in (node["function"].get("parameters") or {}).values():
                keys |= object_keys(arg, parsed)
            return keys
        if set(node) == {"operator"}:
            op = node["operator"]
            if op["type"] == "conditional":
                return object_keys(op["operands"]["true_value"], parsed) | object_keys(
                    op["operands"]["false_value"], parsed
                )
            return set()
        return set(node)
    return set()
