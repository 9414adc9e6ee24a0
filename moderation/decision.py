"""How a risk model turns probabilities into a verdict, chosen on the validation split.

Two choices are made together, for what the screener will really say (the model's verdict raised by
the keyword floor): how much the transformer weighs against the n-gram model in the blend, and the
thresholds `screening.decide` applies to the blend. Every combination on the grid is tried; among those
that flag no more calm messages than the budget, the one that finds the most urgent messages wins (the
share of imminent and high messages flagged high or above, plus the share of imminent ones rated
imminent), then the one that flags the most medium messages, then accuracy. If none keeps within the
budget, the one that flags the fewest calm messages wins. The budget sits under the 10% target because
validation holds fewer wordings than the world does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from itertools import product
from pathlib import Path

import numpy as np

from moderation.screening import LEVELS, rank

DECISION_FILE = "decision.json"
LOW_FLAGGED_BUDGET = 0.08
THRESHOLD_GRID = [round(step / 20, 2) for step in range(1, 20)] + [0.97, 0.99]
# The transformer keeps at least a fifth of the say. With the small base a fresh machine can use, the
# n-gram model alone scores as well on validation (within a point of urgent recall, a few messages)
# and validation alone would drop the transformer; but a reader of meaning is the guard against the
# n-gram model's blind spot, wording it has never seen, and a larger base earns more weight than this.
WEIGHT_GRID = [round(step / 10, 1) for step in range(2, 11)]


@dataclass(frozen=True)
class Decision:
    """The transformer's share of the blend (the n-gram model has the rest) and the thresholds per level."""

    transformer_weight: float = 1.0
    thresholds: dict[str, float] = field(default_factory=lambda: {"medium": 0.5, "high": 0.5, "imminent": 0.5})

    def blend(self, transformer: list[list[float]], ngram: list[list[float]] | None) -> list[list[float]]:
        """The blended probabilities (the transformer's alone when there is no n-gram model)."""
        if ngram is None:
            return transformer
        w = self.transformer_weight
        return [[w * a + (1 - w) * b for a, b in zip(t, n)] for t, n in zip(transformer, ngram)]

    def save(self, folder: Path) -> None:
        (folder / DECISION_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> Decision:
        """The decision kept beside a model, or the default for a model that has none (a hub id, say)."""
        path = Path(folder) / DECISION_FILE
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text(encoding="utf-8"))
        decision = cls(float(raw["transformer_weight"]), {level: float(raw["thresholds"][level]) for level in LEVELS[1:]})
        if not all(0.0 <= value <= 1.0 for value in [decision.transformer_weight, *decision.thresholds.values()]):
            raise ValueError(f"{path}: the weight and thresholds must be probabilities, got {raw}")
        return decision


def choose(transformer: list[list[float]], ngram: list[list[float]] | None, floors: list[str], truth: list[str]) -> Decision:
    """The decision that does best on these validation messages (probabilities in `LEVELS` order)."""
    floor = np.array([rank(level) for level in floors])
    true = np.array([rank(level) for level in truth])
    best, best_score = Decision(), None
    for weight in WEIGHT_GRID if ngram is not None else [1.0]:
        above = levels_or_above(np.asarray(Decision(weight).blend(transformer, ngram)))
        for t_medium, t_high, t_imminent in product(THRESHOLD_GRID, repeat=3):
            thresholds = {"medium": t_medium, "high": t_high, "imminent": t_imminent}
            score = _score(np.maximum(verdicts(above, thresholds), floor), true)
            if best_score is None or score > best_score:
                best, best_score = Decision(weight, thresholds), score
    return best


def levels_or_above(probabilities: np.ndarray) -> np.ndarray:
    """Column i: each row's probability of level i or above, summed from the top as `screening.decide` does."""
    return np.cumsum(probabilities[:, ::-1], axis=1)[:, ::-1]


def verdicts(above: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """The ranks `screening.decide` gives, for many rows at once (about 100,000 threshold sets are tried)."""
    ranks = np.zeros(len(above), dtype=int)
    for index in range(1, len(LEVELS)):
        ranks[above[:, index] >= thresholds[LEVELS[index]]] = index
    return ranks


def _score(said: np.ndarray, true: np.ndarray) -> tuple[bool, float, float, float, float]:
    """How good these verdicts are, as a key to maximise: within the budget first, then as the module says."""

    def share(flags: np.ndarray) -> float:
        return float(flags.mean()) if flags.size else 0.0

    calm_flagged = share(said[true == 0] >= 1)
    within = calm_flagged <= LOW_FLAGGED_BUDGET
    urgent = share(said[true >= 2] >= 2) + share(said[true == 3] == 3)
    return within, 0.0 if within else -calm_flagged, urgent, share(said[true == 1] >= 1), share(said == true)
