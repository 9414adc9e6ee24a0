"""The taps of the online ibasho on LINE: age band, a session's buttons, and the check-in at close."""

from __future__ import annotations

from typing import Literal

from bot.conversation.postbacks import Postback, RowId

CheckinAnswer = Literal["better", "same", "worse"]


class AgeBandTap(Postback, action="band"):
    """The person's age band, asked once before rooms are listed (children and adults never share a room)."""

    id: str


class RoomTap(Postback, action="room"):
    """A room session's button; `id` is the session, or for `report` the room message reported."""

    do: Literal["join", "agree", "decline", "remind", "consult", "report"]
    id: RowId


class CheckinTap(Postback, action="rcheck"):
    """The one-tap answer at close: 気持ちは少し楽になった?"""

    id: RowId
    v: CheckinAnswer
