"""Content as data: the guidance menu, the bot's messages and the helplines, validated with line numbers.

Everything a person reads lives in `content/*.yaml`; this module turns those files into typed
objects, or into a list of `file:line: what is wrong` problems when they are broken.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, ValidationError, field_validator

from bot.hours import OpeningHours
from bot.line_limits import QUICK_REPLY_MAX_ITEMS, QUICK_REPLY_LABEL_MAX

# Japanese numbers as published: fixed/free-dial/navi-dial with hyphens, #-short codes, 3-digit emergency.
PHONE_PATTERN = re.compile(r"^(0\d{1,4}-\d{1,4}-\d{3,4}|#\d{4}|1\d{2})$")
ID_PATTERN = r"^[a-z0-9_]+$"


class ContentError(Exception):
    """Content files are broken; `problems` holds one `file:line: what is wrong` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Category(_Strict):
    """One consultation category of the guidance menu (like one branch of #9999's voice guidance)."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    hours: OpeningHours
    accepted: str = Field(min_length=1)


class MenuLink(_Strict):
    """A menu entry that is not a consultation category (the finder, the online ibasho)."""

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=QUICK_REPLY_LABEL_MAX)
    answer: str = Field(min_length=1)


class Menu(_Strict):
    """The guidance menu: its greeting, the words that open it, and its entries in order."""

    greeting: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    keywords: list[str] = Field(min_length=1)
    categories: list[Category] = Field(min_length=1)
    links: list[MenuLink] = Field(default_factory=list)

    @field_validator("links")
    @classmethod
    def _fits_one_quick_reply(cls, links: list[MenuLink], info: Any) -> list[MenuLink]:
        total = len(info.data.get("categories", [])) + len(links)
        if total > QUICK_REPLY_MAX_ITEMS:
            raise ValueError(f"{total} menu entries; a quick reply holds at most {QUICK_REPLY_MAX_ITEMS}")
        return links

    def category(self, category_id: str) -> Category | None:
        """The category with this id, if the menu has one."""
        return next((c for c in self.categories if c.id == category_id), None)

    def link(self, link_id: str) -> MenuLink | None:
        """The non-category entry with this id, if the menu has one."""
        return next((link for link in self.links if link.id == link_id), None)


class Messages(_Strict):
    """Every fixed sentence the bot says outside the menu entries."""

    received_sticker: str
    received_image: str
    received_media: str
    received_location: str
    unknown_choice: str
    group_not_supported: str
    after_choice: str
    out_of_hours: str
    emergency: str


class Contact(_Strict):
    """One way to reach a helpline."""

    kind: Literal["phone", "chat", "line", "web"]
    value: str

    @field_validator("value")
    @classmethod
    def _well_formed(cls, value: str, info: Any) -> str:
        kind = info.data.get("kind")
        if kind == "phone" and not PHONE_PATTERN.match(value):
            raise ValueError(f"phone number {value!r} is not written like 0120-061-338, #8891 or 110")
        if kind in ("chat", "web", "line") and not value.startswith("https://"):
            raise ValueError(f"{kind} address must be an https:// URL")
        return value


class Resource(_Strict):
    """A real, public helpline or support program, with where its details come from."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    organisation: str
    contacts: list[Contact] = Field(min_length=1)
    hours: OpeningHours
    emergency: bool = False
    source: HttpUrl
    checked: date


class Content(_Strict):
    """All content the bot runs on."""

    menu: Menu
    messages: Messages
    resources: list[Resource]

    def resource(self, resource_id: str) -> Resource | None:
        """The resource with this id, if any."""
        return next((r for r in self.resources if r.id == resource_id), None)


# Which file holds which part of `Content`.
FILES = {"menu": "menu.yaml", "messages": "messages.yaml", "resources": "resources.yaml"}


def load_content(directory: Path | str) -> Content:
    """Load and validate every content file.

    Raises:
        ContentError: with every problem found, each as `file:line: what is wrong`.
    """
    directory = Path(directory)
    problems: list[str] = []
    parts: dict[str, Any] = {}
    nodes: dict[str, yaml.Node] = {}
    for part, name in FILES.items():
        path = directory / name
        node = _compose(path, problems)
        if node is None:
            continue
        nodes[part] = node
        try:
            parts[part] = TypeAdapter(Content.model_fields[part].annotation).validate_python(
                yaml.safe_load(path.read_text(encoding="utf-8"))
            )
        except ValidationError as exc:
            problems.extend(
                f"{path}:{_line(node, error['loc'])}: {_where(error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
    if not problems:
        content = Content(**parts)
        problems.extend(_duplicate_ids(directory, content, nodes))
    if problems:
        raise ContentError(problems)
    return content


def _compose(path: Path, problems: list[str]) -> yaml.Node | None:
    if not path.is_file():
        problems.append(f"{path}:1: file is missing")
        return None
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        problems.append(f"{path}:{line}: YAML syntax: {exc.problem}")
        return None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:1: not readable as YAML: {exc}")
        return None
    if node is None:
        problems.append(f"{path}:1: file is empty")
    return node


def _where(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location) or "top level"


def _line(root: yaml.Node, location: tuple[Any, ...]) -> int:
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


def _duplicate_ids(directory: Path, content: Content, nodes: dict[str, yaml.Node]) -> list[str]:
    """Ids are how postbacks and cross-references name things, so each must be unique."""
    menu = content.menu
    places = {
        "menu": [(("categories", i, "id"), c.id) for i, c in enumerate(menu.categories)]
        + [(("links", i, "id"), link.id) for i, link in enumerate(menu.links)],
        "resources": [((i, "id"), r.id) for i, r in enumerate(content.resources)],
    }
    problems = []
    for part, entries in places.items():
        seen: set[str] = set()
        for location, item_id in entries:
            if item_id in seen:
                line = _line(nodes[part], location)
                problems.append(f"{directory / FILES[part]}:{line}: duplicate id {item_id!r}")
            seen.add(item_id)
    return problems
