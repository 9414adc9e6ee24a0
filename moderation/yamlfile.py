"""Where in a YAML file a validation error is, so every content problem reads `file:line: what is wrong`.

Lives here, below `bot/`, because both the lexicon (here) and the content loader (`bot/guidance/content.py`) use it.
"""

from __future__ import annotations

from typing import Any

import yaml


def dotted(location: tuple[Any, ...]) -> str:
    """A pydantic error location as `categories.3.label` (or "top level")."""
    return ".".join(str(part) for part in location) or "top level"


def line_of(root: yaml.Node, location: tuple[Any, ...]) -> int:
    """The line of the deepest YAML node on the path of a validation error."""
    node = root
    for key in location:
        if isinstance(node, yaml.MappingNode):
            child = next((value for k, value in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            child = node.value[key]
        else:
            child = None
        if child is None:
            break
        node = child
    return node.start_mark.line + 1
