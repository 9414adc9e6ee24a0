"""Typed tap payloads: each button's postback data is a validated model (after aiogram 3's `CallbackData`).

A capability declares its taps as subclasses of `Postback` beside the handlers that answer them,
e.g. `class HelpedTap(Postback, action="helped")` with typed fields. `pack()` writes LINE's
postback data as `a=<action>&field=value` (the format every button ever sent used, so old buttons
in people's chat history still work); `parse()` is the one place that reads it back, and refuses
anything the bot did not make: an unknown action, a missing, repeated or extra field, a value of
the wrong type.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qs, urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.line.limits import POSTBACK_DATA_MAX

# No payload has more fields than this (the action included); more is not ours.
_MAX_FIELDS = 5

#: A table row's id as a tap names it: positive, and within the integer id columns.
RowId = Annotated[int, Field(ge=1, le=2**31 - 1)]
#: A one-tap yes or no.
YesNo = Literal["yes", "no"]


class Postback(BaseModel):
    """The payload of one kind of tap; subclasses name their action: `class X(Postback, action="x")`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: ClassVar[str]
    _kinds: ClassVar[dict[str, type[Postback]]] = {}

    def __init_subclass__(cls, *, action: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if action in Postback._kinds:
            raise TypeError(f"two postback kinds use the action {action!r}")
        cls.action = action
        Postback._kinds[action] = cls

    @staticmethod
    def kinds() -> list[type[Postback]]:
        """Every kind of tap declared (a kind is declared when its module is imported)."""
        return list(Postback._kinds.values())

    def pack(self) -> str:
        """The postback data for a button (at most LINE's 300 characters)."""
        data = urlencode({"a": self.action, **self.model_dump(mode="json")})
        if len(data) > POSTBACK_DATA_MAX:
            raise ValueError(f"postback data longer than {POSTBACK_DATA_MAX} characters")
        return data

    @staticmethod
    def parse(data: str) -> Postback | None:
        """The payload a button of ours sent; None for anything tampered, stale or foreign."""
        try:
            fields = parse_qs(data, keep_blank_values=True, strict_parsing=True, max_num_fields=_MAX_FIELDS)
        except ValueError:
            return None
        if any(len(values) != 1 for values in fields.values()):
            return None
        flat = {key: values[0] for key, values in fields.items()}
        kind = Postback._kinds.get(flat.pop("a", ""))
        if kind is None:
            return None
        try:
            return kind.model_validate(flat)
        except ValidationError:
            return None


class MenuTap(Postback, action="menu"):
    """Back to the guidance menu: offered by every capability, answered by `bot.conversation.menu`."""
