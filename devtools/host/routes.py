"""HTTP trigger route templates (`deployments/{id}`, `files/{*path}`, `items/{id:int?}`) -> regexes.

Matching follows ASP.NET routing as the Functions host uses it: case-insensitive, literal
routes win over parameterised ones, parameter values are URL-decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+)(?:\([^)]*\))?)?(\?)?\}")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "double": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
}


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    literal_segments: int  # more literal segments = more specific
    target: Any

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path.strip("/"))
        if not found:
            return None
        return {
            name: unquote(value)
            for name, value in zip(self.names, found.groups())
            if value is not None
        }


def compile_route(template: str, target: Any = None) -> Route:
    template = template.strip("/")
    names: list[str] = []
    literal = 0
    parts: list[str] = []
    segments = template.split("/") if template else []
    for index, segment in enumerate(segments):
        pieces: list[str] = []
        pos = 0
        optional_segment = False
        for match in _PARAM.finditer(segment):
            pieces.append(re.escape(segment[pos:match.start()]))
            catch_all, name, constraint, optional = match.groups()
            if name in names:
                raise ValueError(f"route {template!r}: parameter {name!r} appears twice")
            names.append(name)
            if catch_all:
                body = r".*"
            else:
                body = _CONSTRAINTS.get((constraint or "").lower(), r"[^/]+")
            pieces.append(f"({body})")
            if optional or catch_all:
                optional_segment = True
            pos = match.end()
        pieces.append(re.escape(segment[pos:]))
        if pos == 0:
            literal += 1
        text = "".join(pieces)
        if index == 0:
            parts.append(f"(?:{text})?" if optional_segment else text)
        else:
            # An optional last parameter also makes its leading '/' optional.
            parts.append(f"(?:/{text})?" if optional_segment else f"/{text}")
    pattern = re.compile("".join(parts), re.IGNORECASE)
    return Route(template, pattern, tuple(names), literal, target)


def order_routes(routes: list[Route]) -> list[Route]:
    """Most specific first: more literal segments, then fewer parameters, then longer template."""
    return sorted(routes, key=lambda r: (-r.literal_segments, len(r.names), -len(r.template)))
