"""Typed tap payloads: what the bot packs reads back the same; anything else is refused in one place."""

from __future__ import annotations

import pytest

from bot.consultation.taps import ConsentTap, HelpedTap, QueueTap
from bot.conversation.handlers import router
from bot.conversation.menu import CategoryTap, LinkTap
from bot.conversation.postbacks import MenuTap, Postback
from bot.rooms.taps import CheckinTap, RoomTap


@pytest.mark.parametrize(
    "tap",
    [MenuTap(), CategoryTap(id="loneliness"), QueueTap(do="cancel"), HelpedTap(id=12, v="no"), RoomTap(do="report", id=7), CheckinTap(id=3, v="same")],
)
def test_a_packed_tap_parses_back_to_itself(tap: Postback) -> None:
    assert Postback.parse(tap.pack()) == tap


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # The wire format of every button already sent in people's chats keeps working.
        ("a=category&id=loneliness", CategoryTap(id="loneliness")),
        ("a=menu", MenuTap()),
        ("a=link&id=finder", LinkTap(id="finder")),
        ("a=consent&id=4&v=yes", ConsentTap(id=4, v="yes")),
        ("a=category", None),  # missing field
        ("a=category&id=x&id=y", None),  # repeated field
        ("a=category&id=x&extra=1", None),  # unexpected field
        ("a=helped&id=abc&v=yes", None),  # an id that is not a number
        ("a=helped&id=-3&v=yes", None),  # nor a row's
        ("a=helped&id=99999999999999999999&v=yes", None),  # beyond the id column
        ("a=helped&id=3&v=maybe", None),  # an answer not offered
        ("a=room&do=drop&id=3", None),  # a room action that does not exist
        ("a=drop_tables", None),
        ("garbage", None),
        ("", None),
        ("action=buy&itemid=111", None),  # LINE's own sample data
    ],
)
def test_postback_data_is_validated(data: str, expected: Postback | None) -> None:
    assert Postback.parse(data) == expected


def test_two_kinds_cannot_share_an_action() -> None:
    with pytest.raises(TypeError):

        class _Again(Postback, action="menu"):
            pass


def test_every_kind_of_tap_has_a_route() -> None:
    """A payload the bot can make but nobody answers would leave the person with no reply."""
    routes = list(router.tap_routes())
    assert set(Postback.kinds()) <= {kind for kind, _fields in routes}
    assert {fields["do"] for kind, fields in routes if kind is RoomTap} == {"join", "agree", "decline", "remind", "consult", "report"}
