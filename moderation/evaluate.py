"""How well the screening does: the lexicon floor alone, the model alone, and both combined.

The figures that matter for a crisis line come first: urgent messages (imminent and high) must reach
a counselor as high or above; calm messages must rarely be flagged, or counselors learn to ignore
flags; and an attempt in progress must be rated imminent.

Conversations are screened as the service screens them (`evaluate_conversations`): each message alone
(the model and the keyword floor, as before the conversation reader), the reader alone on the whole
conversation, and the service's level (the highest of each message alone and the reader on every
window ending at a message, since a level never drops by itself). Two figures are theirs: of the
conversations where the risk shows only in the sequence, how many are caught (urgent ones at high or
above, medium ones at medium or above); of those where context defuses an alarming word, how many are
rated above their level.
"""

from __future__ import annotations

from moderation.classifier import RiskClassifier
from moderation.lexicon import Lexicon, load_lexicon
from moderation.screening import LEVELS, ConversationScreening, at_least, highest, rank

TARGETS = {
    "urgent_recall": (">=", 0.95, "imminent+high flagged high or above"),
    "low_flagged": ("<=", 0.10, "low flagged medium or above"),
    "imminent_recall": (">=", 0.85, "imminent rated imminent"),
}


def figures(truth: list[str], predicted: list[str]) -> dict:
    """Per-level precision/recall, the confusion matrix (rows: truth) and the three key figures."""
    confusion = {t: {p: 0 for p in LEVELS} for t in LEVELS}
    for t, p in zip(truth, predicted):
        confusion[t][p] += 1
    per_level = {}
    for level in LEVELS:
        hits = confusion[level][level]
        said = sum(confusion[t][level] for t in LEVELS)
        real = sum(confusion[level].values())
        per_level[level] = {"precision": hits / said if said else 0.0, "recall": hits / real if real else 0.0, "support": real}

    def share(of: tuple[str, ...], flagged: str) -> float:
        pairs = [(t, p) for t, p in zip(truth, predicted) if t in of]
        return sum(at_least(p, flagged) for _, p in pairs) / len(pairs) if pairs else 0.0

    return {
        "urgent_recall": share(("imminent", "high"), "high"),
        "low_flagged": share(("low",), "medium"),
        "imminent_recall": share(("imminent",), "imminent"),
        "accuracy": sum(t == p for t, p in zip(truth, predicted)) / len(truth) if truth else 0.0,
        "per_level": per_level,
        "confusion": confusion,
    }


def evaluate(examples: list[dict], classifier: RiskClassifier | None, lexicon: Lexicon | None = None) -> dict:
    """Figures for `lexicon`, `model` (its verdicts at its thresholds) and `combined` (as the screener decides)."""
    lexicon = lexicon or load_lexicon()
    floors = [lexicon.floor(e["text"]).level for e in examples]
    verdicts = [level for level, _ in classifier.predict([e["text"] for e in examples])] if classifier else None
    return report([e["level"] for e in examples], floors, verdicts)


def report(truth: list[str], floors: list[str], verdicts: list[str] | None) -> dict:
    """`evaluate`'s figures from the keyword floor's levels and the model's verdicts (None: no model)."""
    result = {"lexicon": figures(truth, floors)}
    if verdicts is not None:
        result["model"] = figures(truth, verdicts)
        result["combined"] = figures(truth, [highest(m, f) for m, f in zip(verdicts, floors)])
    return result


def meets_targets(result: dict) -> dict[str, bool]:
    """Whether each key figure of one result meets its target."""
    return {key: result[key] >= bound if op == ">=" else result[key] <= bound for key, (op, bound, _) in TARGETS.items()}


def format_figures(report: dict) -> str:
    """The key figures of each result side by side; "!" marks a figure that misses its target."""
    names = list(report)
    lines = [f"{'figure':46}" + "".join(f"{n:>12}" for n in names)]
    for key, (op, bound, label) in TARGETS.items():
        marks = "".join(f"{report[n][key]:>11.3f}{' ' if meets_targets(report[n])[key] else '!'}" for n in names)
        lines.append(f"{label + f' ({op}{bound})':46}{marks}")
    lines.append(f"{'accuracy':46}" + "".join(f"{report[n]['accuracy']:>12.3f}" for n in names))
    return "\n".join(lines)


def format_report(report: dict) -> str:
    """The report as text: key figures side by side, then per-level figures and the confusion matrix of each."""
    lines = [format_figures(report)]
    for name in report:
        result = report[name]
        lines += ["", f"[{name}] level      precision  recall  support"]
        for level, f in result["per_level"].items():
            lines.append(f"  {level:14}{f['precision']:>9.3f}{f['recall']:>8.3f}{f['support']:>9}")
        lines.append("  confusion (rows: truth, columns: predicted) " + " ".join(f"{p:>8}" for p in LEVELS))
        for t in LEVELS:
            lines.append(f"  {t:44}" + " ".join(f"{result['confusion'][t][p]:>8}" for p in LEVELS))
    return "\n".join(lines)


CONVERSATION_FIGURES = {
    "sequence_caught": "sequence-only risk caught",
    "defused_overrated": "defused rated above their level",
}


def evaluate_conversations(conversations: list[dict], screenings: list[ConversationScreening]) -> dict:
    """Figures for each way of screening `conversations` ({"messages", "level", "kind"}), from the
    screener's verdicts on them: `one by one` (each message alone, the highest), `reader` (the model on the whole conversation;
    absent without a model) and `service`; and how many of the service's over-rated defused
    conversations the reader rates lower (moderators see a note and may lower them)."""
    verdicts = {"one by one": [highest(*(s.level for s in v.messages)) for v in screenings]}
    with_reader = all(v.reader for v in screenings)
    if with_reader:
        verdicts["reader"] = [v.reader[0] for v in screenings]
    verdicts["service"] = [v.level for v in screenings]
    result: dict = {name: conversation_figures(conversations, levels) for name, levels in verdicts.items()}
    if with_reader:
        overrated = [(v.level, v.reader[0]) for c, v in zip(conversations, screenings) if c["kind"] == "defused" and rank(v.level) > rank(c["level"])]
        result["defused_noted"] = sum(rank(r) < rank(s) for s, r in overrated) / len(overrated) if overrated else 0.0
    result["count"] = len(conversations)
    return result


def conversation_figures(conversations: list[dict], verdicts: list[str]) -> dict:
    """`figures` of the verdicts, with the share of sequence-only risk caught and of defused conversations over-rated."""
    result = figures([c["level"] for c in conversations], verdicts)
    sequences = [(c["level"], v) for c, v in zip(conversations, verdicts) if c["kind"] == "sequence" and c["level"] != "low"]
    result["sequence_caught"] = sum(at_least(v, "high" if at_least(t, "high") else t) for t, v in sequences) / len(sequences) if sequences else 0.0
    defused = [(c["level"], v) for c, v in zip(conversations, verdicts) if c["kind"] == "defused"]
    result["defused_overrated"] = sum(rank(v) > rank(t) for t, v in defused) / len(defused) if defused else 0.0
    return result


def format_conversations(result: dict) -> str:
    """`evaluate_conversations`'s figures side by side, then the service's confusion matrix."""
    ways = {name: value for name, value in result.items() if isinstance(value, dict)}
    lines = [f"{result['count']} conversations", format_figures(ways)]
    for key, label in CONVERSATION_FIGURES.items():
        lines.append(f"{label:46}" + "".join(f"{ways[n][key]:>12.3f}" for n in ways))
    if "defused_noted" in result:
        lines.append(f"{'over-rated defused the reader rates lower':46}{result['defused_noted']:>12.3f}  (moderators see a note)")
    service = ways["service"]
    lines.append("  service's confusion (rows: truth, columns: predicted) " + " ".join(f"{p:>8}" for p in LEVELS))
    for t in LEVELS:
        lines.append(f"  {t:54}" + " ".join(f"{service['confusion'][t][p]:>8}" for p in LEVELS))
    return "\n".join(lines)
