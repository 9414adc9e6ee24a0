"""How well the screening does: the lexicon floor alone, the model alone, and both combined.

The figures that matter for a crisis line come first: urgent messages (imminent and high) must reach
a counselor as high or above; calm messages must rarely be flagged, or counselors learn to ignore
flags; and an attempt in progress must be rated imminent.
"""

from __future__ import annotations

from moderation.classifier import RiskClassifier
from moderation.lexicon import Lexicon, load_lexicon
from moderation.screening import LEVELS, at_least, highest

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
    lines = [f"{'figure':42}" + "".join(f"{n:>12}" for n in names)]
    for key, (op, bound, label) in TARGETS.items():
        marks = "".join(f"{report[n][key]:>11.3f}{' ' if meets_targets(report[n])[key] else '!'}" for n in names)
        lines.append(f"{label + f' ({op}{bound})':42}{marks}")
    lines.append(f"{'accuracy':42}" + "".join(f"{report[n]['accuracy']:>12.3f}" for n in names))
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
