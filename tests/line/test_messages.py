import pytest

from bot.conversation.menu import CategoryTap
from bot.conversation.postbacks import MenuTap
from bot.line.limits import POSTBACK_DATA_MAX, TEXT_MAX_UTF16
from bot.line.messages import postback_item, split_text, texts, utf16_length


def test_utf16_length_counts_astral_emoji_twice() -> None:
    assert utf16_length("あ😀") == 3


def test_long_text_is_split_not_cut() -> None:
    text = ("とてもながい文章です。😀\n" * 900).strip()
    pieces = split_text(text)
    assert len(pieces) > 1
    assert "".join(pieces) == text
    assert all(utf16_length(piece) <= TEXT_MAX_UTF16 for piece in pieces)
    # Pieces end at line breaks where one is near, so no sentence is torn in two.
    assert all(piece.endswith("\n") for piece in pieces[:-1])


def test_split_never_breaks_a_surrogate_pair() -> None:
    text = "😀" * 2600  # 5,200 UTF-16 units with no line break
    pieces = split_text(text)
    assert [utf16_length(p) for p in pieces] == [5000, 200]


def test_quick_reply_is_on_the_last_message_only() -> None:
    item = postback_item("メニュー", MenuTap().pack())
    messages = texts("あ" * (TEXT_MAX_UTF16 + 1), quick_reply=[item])
    assert len(messages) == 2
    assert "quickReply" not in messages[0] and messages[1]["quickReply"]["items"] == [item]


def test_limits_are_enforced_when_building() -> None:
    with pytest.raises(ValueError):
        postback_item("あ" * 21, "a=menu")
    with pytest.raises(ValueError):
        CategoryTap(id="x" * POSTBACK_DATA_MAX).pack()
    with pytest.raises(ValueError):
        texts("x", quick_reply=[postback_item("a", "a=menu")] * 14)
