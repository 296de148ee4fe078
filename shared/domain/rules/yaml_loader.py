"""YAML for the rules file: safe, strict about duplicate keys, and with line numbers (pure).

Problems name the line they are on, so every mapping read here remembers where it started
(`getattr(mapping, "line", None)`); `FieldReader.problem` picks that up from the node it is given.
"""

from __future__ import annotations

from typing import Any

import yaml

from shared.domain.rules.fields import RulesError


class LineMap(dict):
    """A mapping from the YAML, with the 1-based line it starts on."""

    line: int | None = None


class _Loader(yaml.SafeLoader):
    """Safe YAML that remembers each mapping's line and refuses duplicate keys (PyYAML would
    silently keep the last one, hiding a mistake)."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> LineMap:
    loader.flatten_mapping(node)
    result = LineMap()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in result
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            ) from exc
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


def load_yaml(text: str, file: str) -> Any:
    """The document in `text`; broken YAML is a RulesError naming the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
        raise RulesError(file, None, None, message, line=line) from exc
