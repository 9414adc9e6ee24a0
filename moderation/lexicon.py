"""The keyword floor: the level that the words of a message justify on their own.

The words live in `content/risk/lexicon.yaml` (reviewed data). This module normalises messages the
way young people's spellings vary (NFKC, katakana, small kana, long vowels, repeated characters,
written variants such as タヒ or 4ね), finds the terms and combines them: a method with a time word
becomes imminent, a hyperbole context keeps a joke low, an entry's own `unless` words keep an innocent
use low (キャンプ beside ロープ), and a message saying the risk is over (昔は…今は大丈夫) counts only
what is imminent. The floor can only raise a level: the model may see risk that no keyword names, but
a keyword it misses still counts.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moderation.screening import Screening, Tag, at_least, highest
from moderation.yamlfile import dotted, line_of

DEFAULT_LEXICON = Path(__file__).resolve().parents[1] / "content" / "risk" / "lexicon.yaml"
# "A…B": B follows A in the same sentence, at most this many characters later.
GAP = "…"
GAP_CHARS = 12
SENTENCE_END = "。．.！!？?\n"
LONG_VOWELS = set("ー〜~")
HALF_WIDTH_MARKS = "ﾞﾟ"
SMALL_KANA = str.maketrans("ぁぃぅぇぉっゃゅょゎ", "あいうえおつやゆよわ")
# Third parties named in a message: the concern is about someone else (the level still counts).
THIRD_PARTY = re.compile(
    r"(友達|友だち|ともだち|親友|クラスの|彼氏|彼女|先輩|後輩|妹|弟|姉|兄|母|父|子供|息子|娘|"
    r"my friend|my sister|my brother|a friend)[^。!?！？\n]{0,30}"
    r"(って|と言って|といって|みたい|らしい|そう|言ってる|言ってた|lineきた|してる|says|said|told me)"
)


class LexiconError(Exception):
    """The lexicon file is broken; `problems` holds one `file:line: what is wrong` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Entry(BaseModel):
    """A group of words that imply one level and the same tags."""

    model_config = ConfigDict(extra="forbid")

    words: list[str] = Field(min_length=1)
    level: Literal["low", "medium", "high", "imminent"]
    role: Literal["wish", "act", "means"]
    tags: list[Literal["self_harm", "suicide", "abuse_violence", "sexual_exploitation"]]
    # The words may be a joke: a hyperbole context anywhere in the message keeps them from counting.
    hyperbole: bool = False
    # Words that, anywhere in the message, show an innocent use of these words (推し beside 今までありがとう).
    unless: list[str] = []


class LexiconFile(BaseModel):
    """The whole file as written."""

    model_config = ConfigDict(extra="forbid")

    variants: dict[str, str]
    terms: list[Entry] = Field(min_length=1)
    preparation: list[str] = Field(min_length=1)
    time_words: list[str] = Field(min_length=1)
    hyperbole_contexts: list[str] = Field(min_length=1)
    innocent: list[str]
    resolved: list[str]


@dataclass(frozen=True)
class Match:
    """One term found in a message, with its span in the original text."""

    entry: Entry
    start: int
    end: int


class Lexicon:
    """The compiled lexicon: normalised patterns ready to search."""

    def __init__(self, data: LexiconFile) -> None:
        self.data = data
        self.variants = sorted(((_plain(a), _plain(b)) for a, b in data.variants.items()), key=lambda v: -len(v[0]))
        self.terms = [(entry, _pattern(entry.words, self), _pattern(entry.unless, self) if entry.unless else None) for entry in data.terms]
        self.preparation = _pattern(data.preparation, self)
        self.time_words = _pattern(data.time_words, self)
        self.contexts = _pattern(data.hyperbole_contexts, self)
        self.innocent = _pattern(data.innocent, self)
        self.resolved = _pattern(data.resolved, self)

    def normalise(self, text: str) -> tuple[str, list[tuple[int, int]]]:
        """The text as the terms are written, and for each of its characters the span it came from."""
        chars, spans = _normalise_chars(text)
        for source, target in self.variants:
            chars, spans = _replace(chars, spans, source, target)
        return "".join(chars), spans

    def floor(self, text: str) -> Screening:
        """The level the keywords alone justify, with a tag and span for each term found."""
        normal, spans = self.normalise(text)
        innocent = [m.span() for m in self.innocent.finditer(normal)] if self.data.innocent else []

        def found(pattern: re.Pattern[str]) -> list[re.Match[str]]:
            return [m for m in pattern.finditer(normal) if not _masked(m.span(), innocent)]

        joking = bool(found(self.contexts))
        # A risk told as past and over ("昔はリスカしてたけど今は大丈夫") still counts if it is imminent.
        resolved = bool(found(self.resolved))
        matches = [
            Match(entry, spans[m.start()][0], spans[m.end() - 1][1])
            for entry, pattern, unless in self.terms
            if not (entry.hyperbole and joking) and not (unless and found(unless)) and not (resolved and entry.level != "imminent")
            for m in found(pattern)
        ]
        timed = bool(found(self.time_words))
        prepared = bool(found(self.preparation))
        intent = any(m.entry.role != "means" and {"suicide", "self_harm"} & set(m.entry.tags) for m in matches)
        level = "low"
        counted: list[Match] = []
        for m in matches:
            if m.entry.role == "means" and not (intent or prepared):
                continue
            term_level = m.entry.level
            if m.entry.role in ("act", "means") and timed and at_least(term_level, "high"):
                term_level = "imminent"
            level = highest(level, term_level)
            counted.append(m)
        return Screening(level=level, score=1.0 if counted else 0.0, source="lexicon", tags=_tags(text, counted))


def _tags(text: str, matches: list[Match]) -> list[Tag]:
    # Overlapping terms of one tag (今から飛び降り, 飛び降りる) give one tag over their union.
    spans: dict[str, list[tuple[int, int]]] = {}
    for m in sorted(matches, key=lambda m: m.start):
        for name in m.entry.tags:
            merged = spans.setdefault(name, [])
            if merged and m.start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], m.end))
            else:
                merged.append((m.start, m.end))
    tags = [Tag(name, span, text[span[0] : span[1]]) for name, found in spans.items() for span in found]
    tags.sort(key=lambda t: t.span)
    if matches:
        third = THIRD_PARTY.search(text.lower())
        if third:
            tags.append(Tag("third_party", third.span(), text[third.start() : third.end()]))
    return tags


def load_lexicon(path: Path | str = DEFAULT_LEXICON) -> Lexicon:
    """Load and validate the lexicon file.

    Raises:
        LexiconError: with every problem found, each as `file:line: what is wrong`.
    """
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
        node = yaml.compose(source, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(source)
    except FileNotFoundError:
        raise LexiconError([f"{path}:1: file is missing"]) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise LexiconError([f"{path}:{line}: YAML syntax: {exc.problem}"]) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LexiconError([f"{path}:1: not readable as YAML: {exc}"]) from None
    if node is None:
        raise LexiconError([f"{path}:1: file is empty"])
    try:
        data = LexiconFile.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{path}:{line_of(node, e['loc'])}: {dotted(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise LexiconError(problems) from None
    problems = [
        f"{path}:{line_of(node, ('terms', i, 'words', j))}: terms.{i}.words.{j}: {word!r} is empty after normalisation"
        for i, entry in enumerate(data.terms)
        for j, word in enumerate(entry.words)
        if not _plain(word.replace(GAP, ""))
    ]
    if problems:
        raise LexiconError(problems)
    return Lexicon(data)


_default: Lexicon | None = None


def floor(text: str) -> Screening:
    """The keyword floor of `text` with the project's lexicon (loaded once)."""
    global _default
    if _default is None:
        _default = load_lexicon()
    return _default.floor(text)


def _normalise_chars(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    for index, original in enumerate(text):
        if original in HALF_WIDTH_MARKS and chars:
            # A half-width voiced mark belongs to the kana before it: ﾄﾞ is ド, not ト and a mark.
            composed = unicodedata.normalize("NFKC", text[index - 1 : index + 1])
            if len(composed) == 1:
                chars[-1], spans[-1] = _fold(composed), (spans[-1][0], index + 1)
                continue
        for char in unicodedata.normalize("NFKC", original).lower():
            char = _fold(char)
            if char in LONG_VOWELS:
                continue
            if chars and chars[-1] == char:
                # A run of one character (しにたいいい, www, ！！) reads as one.
                spans[-1] = (spans[-1][0], index + 1)
                continue
            chars.append(char)
            spans.append((index, index + 1))
    return chars, spans


def _fold(char: str) -> str:
    """Katakana as hiragana, small kana as full size."""
    if "ァ" <= char <= "ヶ":
        char = chr(ord(char) - 0x60)
    return char.translate(SMALL_KANA)


def _plain(text: str) -> str:
    return "".join(_normalise_chars(text)[0])


def _replace(chars: list[str], spans: list[tuple[int, int]], source: str, target: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Replace `source` with `target`, each new character covering the whole replaced span."""
    text = "".join(chars)
    if source not in text:
        return chars, spans
    out_chars: list[str] = []
    out_spans: list[tuple[int, int]] = []
    i = 0
    while i < len(chars):
        if text.startswith(source, i):
            covered = (spans[i][0], spans[i + len(source) - 1][1])
            out_chars.extend(target)
            out_spans.extend([covered] * len(target))
            i += len(source)
        else:
            out_chars.append(chars[i])
            out_spans.append(spans[i])
            i += 1
    return out_chars, out_spans


def _pattern(words: list[str], lexicon: Lexicon) -> re.Pattern[str]:
    """One regex for all `words`, normalised like messages; ASCII words match whole words only."""
    parts = []
    for word in words:
        pieces = [lexicon.normalise(piece)[0] for piece in word.split(GAP)]
        body = f"[^{re.escape(SENTENCE_END)}]{{0,{GAP_CHARS}}}".join(re.escape(p) for p in pieces)
        if pieces[0][:1].isascii() and pieces[0][:1].isalnum():
            body = r"(?<![a-z0-9])" + body
        if pieces[-1][-1:].isascii() and pieces[-1][-1:].isalpha():
            body += r"(?![a-z])"
        parts.append(body)
    parts.sort(key=len, reverse=True)
    return re.compile("|".join(parts))


def _masked(span: tuple[int, int], innocent: list[tuple[int, int]]) -> bool:
    """Whether a match overlaps an innocent phrase without containing all of it."""
    return any(span[0] < end and start < span[1] and not (span[0] <= start and end <= span[1]) for start, end in innocent)
