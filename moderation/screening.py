"""What a screening says about one message: its risk level, how sure, what decided it, and why.

Levels are plain strings so that they travel unchanged through JSON, the database and templates; their
order lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# From least to most urgent. `imminent`: an attempt or danger happening now or today; `high`: an active
# wish to die, method seeking, self-harm, abuse or exploitation; `medium`: passive wish not to exist,
# hopelessness, a crisis of living; `low`: everything else, youth hyperbole included.
LEVELS = ("low", "medium", "high", "imminent")
TAG_NAMES = ("self_harm", "suicide", "abuse_violence", "sexual_exploitation", "third_party")
# A conversation reaches the model as its messages joined by the separator its tokenizer knows as one
# token ([SEP] of the character tokenizers `train.py` builds); the n-gram model reads it as a line break.
SEPARATOR = "[SEP]"
# The newest messages of a conversation that together hold at most this many characters are read (at
# least the newest one, whole): with the separators they fit the transformer's 128 tokens.
WINDOW_CHARACTERS = 110


def rank(level: str) -> int:
    """The position of `level` in `LEVELS`; an unknown name is a bug, so it raises ValueError."""
    return LEVELS.index(level)


def highest(*levels: str) -> str:
    """The most urgent of `levels` (`low` when none are given)."""
    return max(levels, key=rank, default="low")


def conversation_text(messages: Sequence[str]) -> str:
    """What the model reads of a conversation (oldest first): its newest messages within
    `WINDOW_CHARACTERS`, joined by `SEPARATOR`. One message is read as it is."""
    kept: list[str] = []
    size = 0
    for message in reversed(messages):
        if kept and size + len(message) > WINDOW_CHARACTERS:
            break
        kept.append(message)
        size += len(message)
    return SEPARATOR.join(reversed(kept))


def decide(probabilities: Sequence[float], thresholds: Mapping[str, float]) -> tuple[str, float]:
    """The model's verdict from its probabilities (in `LEVELS` order): the most urgent level whose
    probability of it or above reaches its threshold, with that probability (for `low`, that of `low`).

    The levels are ordered, so a message the model splits between high and imminent is still surely
    urgent; summing from the top keeps that, where taking the likeliest level alone would lose it. Each
    model carries its own thresholds, chosen on the validation split (`moderation/decision.py`).
    """
    above = 0.0
    for index in range(len(LEVELS) - 1, 0, -1):
        above += probabilities[index]
        if above >= thresholds[LEVELS[index]]:
            return LEVELS[index], above
    return "low", probabilities[0]


def at_least(level: str, threshold: str) -> bool:
    """Whether `level` is as urgent as `threshold` or more."""
    return rank(level) >= rank(threshold)


@dataclass(frozen=True)
class Tag:
    """One kind of concern in a message, with the characters that showed it when a keyword did."""

    name: str
    span: tuple[int, int] | None = None
    text: str | None = None


@dataclass(frozen=True)
class Screening:
    """The verdict on one message.

    `source` names what decided the level: "model", "lexicon", "model+lexicon" (both gave it) or
    "lexicon (model unavailable)". `tags` carry the keyword floor's findings; `drivers` the words the
    model weighed most (named "model").
    """

    level: str
    score: float
    source: str
    tags: list[Tag] = field(default_factory=list)
    # Where the words are that weighed most in the model's verdict, when it was medium or above.
    drivers: list[Tag] = field(default_factory=list)

    def as_dict(self) -> dict:
        """A JSON-ready form (spans as lists)."""
        return {
            "level": self.level,
            "score": round(self.score, 4),
            "source": self.source,
            "tags": [{"name": t.name, "span": list(t.span) if t.span else None, "text": t.text} for t in self.tags],
            "drivers": [{"span": list(t.span), "text": t.text} for t in self.drivers],
        }


@dataclass(frozen=True)
class ConversationScreening:
    """The verdict on a conversation read as the service reads it, message after message.

    `messages`: each message screened alone (model and keyword floor); `windows`: the model's verdict
    (level, probability) on each window ending at a message, oldest first, or None when no model
    screens. `level`: the highest of them all, since a level never drops by itself; `reader`: the
    model's verdict on the whole conversation, which may be lower (context defused a word).
    """

    messages: list[Screening]
    windows: list[tuple[str, float]] | None

    @property
    def level(self) -> str:
        return highest(*(s.level for s in self.messages), *(level for level, _ in self.windows or []))

    @property
    def reader(self) -> tuple[str, float] | None:
        return self.windows[-1] if self.windows else None

    def as_dict(self) -> dict:
        """A JSON-ready form, without the messages' words."""
        reader = {"level": self.reader[0], "score": round(self.reader[1], 4)} if self.reader else None
        return {"level": self.level, "reader": reader, "messages": [{"level": s.level, "source": s.source} for s in self.messages]}
