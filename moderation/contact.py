"""Contact details and identifying information in a peer-support room message, found before it is relayed.

Rooms forbid exchanging contact details: the services that run such rooms well learned that this is
how grooming and harassment leave the room. What is found here is held back, and the sender is told
what kind of thing it was (never the span itself, which they already know).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Kinds, as the sender is told them (Japanese: rooms are held in Japanese).
KIND_WORDS = {
    "phone": "電話番号",
    "email": "メールアドレス",
    "url": "URL",
    "handle": "SNSやLINEのID",
    "invitation": "個別に連絡をとる誘い",
    "qr": "QRコード",
    "address": "住所",
    "school": "学校名と学年",
}

# Written after NFKC (full-width digits and letters become ASCII) and with spaces and dashes between
# digits removed, so "０９０ー１２３４ー５６７８" and "090 1234 5678" are caught alike.
_NAME = r"[一-龥ァ-ヶー]"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"[\w.+-]+\s*(@|アット|あっと)\s*[\w-]+\s*(\.|ドット|どっと)\s*[a-z][\w.-]*")),
    ("url", re.compile(r"(https?://|www\.)\S+|(?<![\w@.])[a-z0-9-]+\.(com|net|jp|org|io|me|link|ly)(?![a-z])")),
    ("phone", re.compile(r"(?<!\d)(0|\+?81)\d{9,10}(?!\d)")),
    ("handle", re.compile(r"(line|ライン|らいん|insta|インスタ|いんすた|twitter|ツイッター|discord|ディスコ|tiktok)\s*の?\s*(id|アカ|垢)|(?<![\w.@])@[a-z0-9_.]{3,}|(?<![a-z])id\s*[:は]\s*[a-z0-9_.-]{3,}")),
    ("invitation", re.compile(r"(?<![a-z])dm(?![a-z])|個チャ|こちゃ|個別に(連絡|話)|連絡先を?(交換|教え)|(ライン|line)を?(交換|教え)|会いませんか|直接会|オフ会")),
    ("qr", re.compile(r"(?<![a-z])qr(?![a-z])")),
    ("address", re.compile(_NAME + r"{1,6}(市|区|町|村)[一-龥ぁ-んァ-ヶー]{1,8}(\d+(丁目|番地?|号)|\d{3,})")),
    ("school", re.compile(_NAME + r"{1,8}(小学校|中学校|高校|高等学校|小|中|高)の?\d年")),
]
_DIGIT_GAPS = re.compile(r"(?<=\d)[\s\-ー−‐―]+(?=\d)")


@dataclass(frozen=True)
class ContactFinding:
    """One thing that must not be relayed: its kind (a key of KIND_WORDS) and where it is in the normalised text."""

    kind: str
    span: tuple[int, int]


def normalise(text: str) -> str:
    """NFKC, lower case, and the gaps between digits closed."""
    return _DIGIT_GAPS.sub("", unicodedata.normalize("NFKC", text).lower())


def find_contact_details(text: str) -> list[ContactFinding]:
    """Everything in `text` a room must not relay, in order of appearance (empty if it may be relayed)."""
    normalised = normalise(text)
    findings = [ContactFinding(kind, match.span()) for kind, pattern in _PATTERNS for match in pattern.finditer(normalised)]
    return sorted(findings, key=lambda finding: finding.span)


def describe(findings: list[ContactFinding]) -> str:
    """The kinds found, as the sender is told them (e.g. 電話番号、URL)."""
    return "、".join(dict.fromkeys(KIND_WORDS[f.kind] for f in findings))
