"""The taps of a consultation on LINE: the waiting person's buttons, "did this help?", and consent to a referral."""

from __future__ import annotations

from typing import Literal

from bot.conversation.postbacks import Postback, RowId, YesNo


class QueueTap(Postback, action="queue"):
    """A waiting person asks where they stand, or cancels."""

    do: Literal["status", "cancel"]


class HelpedTap(Postback, action="helped"):
    """The one-tap answer to "did this help?" after a consultation ended."""

    id: RowId
    v: YesNo


class ConsentTap(Postback, action="consent"):
    """The person's yes or no to being connected to a support organisation."""

    id: RowId
    v: YesNo
