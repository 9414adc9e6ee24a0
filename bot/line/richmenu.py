"""Rich menus: drawn with Pillow in a Japanese font, kept on LINE once per design, switched per person.

A design (`MenuDesign`: which taps, their words) comes from the capabilities; this module knows only
LINE's side: the image within LINE's sizes and byte limit, the rich menu object, and `sync_menus`,
which makes LINE hold exactly the designs asked for. A menu's name carries a hash of its object and
image, so running the set-up twice finds the menu already there and creates nothing; an alias per
design (`alias_id`) is how the sender finds the menu to link to a person.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linebot.v3.messaging import (
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    CreateRichMenuAliasRequest,
    RichMenuRequest,
    UpdateRichMenuAliasRequest,
)
from linebot.v3.messaging.exceptions import ApiException
from PIL import Image, ImageDraw, ImageFont

from bot.line.limits import RICH_MENU_AREAS_MAX, RICH_MENU_CHAT_BAR_TEXT_MAX, RICH_MENU_IMAGE_MAX_BYTES

# LINE's rules for a rich menu's size object (and so its image, which must match it).
IMAGE_MIN_WIDTH, IMAGE_MAX_WIDTH, IMAGE_MIN_HEIGHT, IMAGE_MIN_RATIO = 800, 2500, 250, 1.45
# Half height: the menu leaves most of the chat visible.
SIZE = (2500, 843)
# Every menu tsunagi made starts with this: other menus on the channel are left alone.
NAME_PREFIX = "tsunagi "
# Known places of the IPA Gothic font Debian's fonts-ipafont-gothic installs (`make browser`).
FONT_PATHS = (Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"), Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf"))
# Colours of the tiles, in turn (dark enough for white text at AA contrast).
TILES = ("#1f6f5c", "#275d8c", "#6b4f8a", "#9c3d3d")


class RichMenuError(Exception):
    """The set-up cannot go on; the message says why and what to do, in one line."""


@dataclass(frozen=True)
class Tap:
    """One tile of a menu: its words and the postback data it sends."""

    label: str
    data: str


@dataclass(frozen=True)
class MenuDesign:
    """One rich menu as the service wants it: `kind` ("main", "consultation") in one language."""

    kind: str
    language: str
    chat_bar_text: str
    taps: tuple[Tap, ...]

    @property
    def alias(self) -> str:
        """The alias LINE keeps for this design."""
        return alias_id(self.kind, self.language)


def alias_id(kind: str, language: str) -> str:
    """The rich menu alias of a kind of menu in a language (LINE allows 1-32 of a-z, 0-9, _ and -)."""
    return f"tsunagi-{kind}-{language}"


def find_font() -> Path:
    """A font with Japanese glyphs: IPA Gothic by fontconfig or at its known place.

    Raises:
        RichMenuError: none is installed.
    """
    if shutil.which("fc-list"):
        listed = subprocess.run(["fc-list", ":lang=ja", "file"], capture_output=True, text=True, check=False).stdout
        files = sorted(line.split(":")[0].strip() for line in listed.splitlines() if line.strip())
        preferred = [f for f in files if "ipag" in f.lower() or "japanese-gothic" in f.lower()]
        if preferred or files:
            return Path((preferred or files)[0])
    for path in FONT_PATHS:
        if path.exists():
            return path
    raise RichMenuError("no Japanese font for the rich menu image; install Debian's fonts-ipafont-gothic (`make browser`)")


def draw(design: MenuDesign, font_path: Path) -> bytes:
    """The menu's image: one tile per tap, side by side, its words centred; PNG within LINE's limits."""
    width, height = SIZE
    image = Image.new("RGB", SIZE, "#ffffff")
    canvas = ImageDraw.Draw(image)
    for index, (tap, (x, y, w, h)) in enumerate(zip(design.taps, _bounds(len(design.taps)), strict=True)):
        canvas.rectangle((x + 8, y + 8, x + w - 8, y + h - 8), fill=TILES[index % len(TILES)])
        lines = _wrapped(tap.label, font_path, w - 80)
        font = ImageFont.truetype(str(font_path), _font_size(tap.label, w))
        text = "\n".join(lines)
        box = canvas.multiline_textbbox((0, 0), text, font=font, spacing=24, align="center")
        canvas.multiline_text(
            (x + (w - (box[2] - box[0])) / 2, y + (h - (box[3] - box[1])) / 2 - box[1]), text, font=font, fill="#ffffff", spacing=24, align="center"
        )
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    data = out.getvalue()
    if len(data) > RICH_MENU_IMAGE_MAX_BYTES:
        raise RichMenuError(f"the {design.alias} image is {len(data)} bytes, over LINE's {RICH_MENU_IMAGE_MAX_BYTES}")
    return data


def _font_size(label: str, width: int) -> int:
    # Large enough to read on a phone; smaller for a long label so that it wraps in two lines at most.
    return 100 if len(label) <= 5 else 88


def _wrapped(label: str, font_path: Path, max_width: int) -> list[str]:
    """The label in lines that fit the tile (Japanese wraps between any two characters)."""
    font = ImageFont.truetype(str(font_path), _font_size(label, max_width))
    lines, line = [], ""
    for char in label:
        if line and font.getlength(line + char) > max_width:
            lines.append(line)
            line = ""
        line += char
    return [*lines, line]


def _bounds(count: int) -> list[tuple[int, int, int, int]]:
    """Equal columns over the whole image: (x, y, width, height) each, the last taking the remainder."""
    width, height = SIZE
    step = width // count
    return [(i * step, 0, step if i < count - 1 else width - i * step, height) for i in range(count)]


def menu_object(design: MenuDesign, image: bytes) -> dict[str, Any]:
    """The rich menu object LINE takes, named by a hash of itself and its image."""
    if not 1 <= len(design.taps) <= RICH_MENU_AREAS_MAX:
        raise RichMenuError(f"{design.alias}: a rich menu has 1 to {RICH_MENU_AREAS_MAX} areas")
    areas = [
        {"bounds": {"x": x, "y": y, "width": w, "height": h}, "action": {"type": "postback", "label": tap.label[:20], "data": tap.data}}
        for tap, (x, y, w, h) in zip(design.taps, _bounds(len(design.taps)), strict=True)
    ]
    body = {"size": {"width": SIZE[0], "height": SIZE[1]}, "selected": False, "chatBarText": design.chat_bar_text[:RICH_MENU_CHAT_BAR_TEXT_MAX], "areas": areas}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode() + image).hexdigest()[:16]
    return {**body, "name": f"{NAME_PREFIX}{design.alias} {digest}"}


async def sync_menus(api: AsyncMessagingApi, blob: AsyncMessagingApiBlob, designs: list[MenuDesign], font: Path, *, default: str, dry_run: bool) -> list[str]:
    """Make LINE hold exactly `designs`: create what is missing (with its image), point each alias at
    its menu, make `default` (an alias) everyone's menu, and delete menus of ours no design wants.
    Returns what was (or, with `dry_run`, would be) done, one line each."""
    done: list[str] = []
    existing = {menu.name: menu.rich_menu_id for menu in (await api.get_rich_menu_list()).richmenus}
    aliases = {alias.rich_menu_alias_id: alias.rich_menu_id for alias in (await api.get_rich_menu_alias_list()).aliases}
    wanted: dict[str, str] = {}
    for design in designs:
        image = draw(design, font)
        body = menu_object(design, image)
        menu_id = existing.get(body["name"])
        if menu_id is None:
            done.append(f"create rich menu {body['name']!r} ({len(body['areas'])} taps, image {len(image)} bytes)")
            if not dry_run:
                menu_id = (await api.create_rich_menu(RichMenuRequest.from_dict(body))).rich_menu_id
                await blob.set_rich_menu_image(menu_id, image, _headers={"Content-Type": "image/png"})
        else:
            done.append(f"rich menu {body['name']!r} is there already ({menu_id})")
        wanted[body["name"]] = menu_id or "(new)"
        if aliases.get(design.alias) == menu_id and menu_id is not None:
            continue
        done.append(f"alias {design.alias} -> {body['name']!r}")
        if dry_run:
            continue
        if design.alias in aliases:
            await api.update_rich_menu_alias(design.alias, UpdateRichMenuAliasRequest(richMenuId=menu_id))
        else:
            await api.create_rich_menu_alias(CreateRichMenuAliasRequest(richMenuAliasId=design.alias, richMenuId=menu_id))
        aliases[design.alias] = menu_id
    default_id = aliases.get(default)
    current = await _default_menu(api)
    if current != default_id or default_id is None:
        done.append(f"default rich menu -> {default}")
        if not dry_run:
            await api.set_default_rich_menu(default_id)
    for name, menu_id in existing.items():
        if name.startswith(NAME_PREFIX) and name not in wanted:
            done.append(f"delete old rich menu {name!r}")
            if not dry_run:
                await api.delete_rich_menu(menu_id)
    return done


async def _default_menu(api: AsyncMessagingApi) -> str | None:
    try:
        return (await api.get_default_rich_menu_id()).rich_menu_id
    except ApiException as exc:
        if exc.status == 404:
            return None  # no default yet
        raise
