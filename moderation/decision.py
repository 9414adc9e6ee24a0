"""How a risk model turns probabilities into a verdict, chosen on the validation split.

Two choices are made together, for what the screener will really say (the model's verdict raised by
the keyword floor): how much the transformer weighs against the n-gram model in the blend, and the
thresholds `screening.decide` applies to the blend. Every combination on the grid is tried; among those
that flag no more calm messages than the budget, the one that finds the most urgent messages wins (the
share of imminent and high messages flagged high or above, plus the share of imminent ones rated
imminent), then the one that flags the most medium messages, then accuracy. If none keeps within the
budget, the one that flags the fewest calm messages wins. The budget sits under the 10% target because
validation holds fewer wordings than the world does.

A window of several messages (the conversation reader's input) gets thresholds of its own
(`choose_windows`), chosen on validation's conversations as the service screens them: the reader is
there for the risk no single message shows, and at the messages' thresholds it found too little of it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from moderation.screening import LEVELS, SEPARATOR, rank

DECISION_FILE = "decision.json"
LOW_FLAGGED_BUDGET = 0.08
# What the windows' own thresholds may add to the calm conversations the service flags, over the
# windows read at the messages' thresholds: the service already flags the defused ones (a level never
# drops by itself), so the budget is on what the windows add.
WINDOW_CALM_ALLOWANCE = 0.02
THRESHOLD_GRID = [round(step / 20, 2) for step in range(1, 20)] + [0.97, 0.99]
# The transformer keeps at least a fifth of the say. With the small base a fresh machine can use, the
# n-gram model alone scores as well on validation (within a point of urgent recall, a few messages)
# and validation alone would drop the transformer; but a reader of meaning is the guard against the
# n-gram model's blind spot, wording it has never seen, and a larger base earns more weight than this.
WEIGHT_GRID = [round(step / 10, 1) for step in range(2, 11)]


@dataclass(frozen=True)
class Decision:
    """The transformer's share of the blend (the n-gram model has the rest), the thresholds per level, and
    those for a window of several messages (None: the same)."""

    transformer_weight: float = 1.0
    thresholds: dict[str, float] = field(default_factory=lambda: {"medium": 0.5, "high": 0.5, "imminent": 0.5})
    window_thresholds: dict[str, float] | None = None

    def thresholds_for(self, text: str) -> dict[str, float]:
        """The thresholds for `text`: a window's when it joins several messages (`screening.conversation_text`)."""
        return self.window_thresholds if self.window_thresholds and SEPARATOR in text else self.thresholds

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

        def levels(thresholds: dict) -> dict[str, float]:
            return {level: float(thresholds[level]) for level in LEVELS[1:]}

        windows = raw.get("window_thresholds")
        decision = cls(float(raw["transformer_weight"]), levels(raw["thresholds"]), levels(windows) if windows else None)
        values = [decision.transformer_weight, *decision.thresholds.values(), *(decision.window_thresholds or {}).values()]
        if not all(0.0 <= value <= 1.0 for value in values):
            raise ValueError(f"{path}: the weight and thresholds must be probabilities, got {raw}")
        return decision


Score = tuple[bool, float, float, float, float]


def choose(transformer: list[list[float]], ngram: list[list[float]] | None, floors: list[str], truth: list[str]) -> Decision:
    """The decision that does best on these validation messages (probabilities in `LEVELS` order)."""
    return choose_scored(transformer, ngram, floors, truth)[0]


def choose_scored(
    transformer: list[list[float]], ngram: list[list[float]] | None, floors: list[str], truth: list[str]
) -> tuple[Decision, Score]:
    """The best decision and its score (a key to maximise: see `grid_scores`); the first of equals on the grid wins."""
    floor = np.array([rank(level) for level in floors])
    true = np.array([rank(level) for level in truth])
    best, best_score = Decision(), None
    for weight in WEIGHT_GRID if ngram is not None else [1.0]:
        scores = grid_scores(levels_or_above(np.asarray(Decision(weight).blend(transformer, ngram))), floor, true)
        # Lexicographic maximum, the earliest on the grid among equals (lexsort puts it last).
        index = int(np.lexsort((-np.arange(len(scores[0])), *reversed(scores)))[-1])
        score = tuple(bool(scores[0][index]) if k == 0 else float(scores[k][index]) for k in range(len(scores)))
        if best_score is None or score > best_score:
            thresholds = dict(zip(LEVELS[1:], (THRESHOLD_GRID[i] for i in np.unravel_index(index, (len(THRESHOLD_GRID),) * 3))))
            best, best_score = Decision(weight, thresholds), score
    return best, best_score


def levels_or_above(probabilities: np.ndarray) -> np.ndarray:
    """Column i: each row's probability of level i or above, summed from the top as `screening.decide` does."""
    return np.cumsum(probabilities[:, ::-1], axis=1)[:, ::-1]


def from_levels_or_above(above: np.ndarray) -> np.ndarray:
    """Each level's probability from readers of "this level or above" (column i for level i + 1), made
    to agree that a higher level is never likelier than a lower one or above: the inverse of
    `levels_or_above` for the ordered readers (`ngram.OrderedRegression`, the transformer's head)."""
    above = np.minimum.accumulate(np.column_stack([np.ones(len(above)), above]), axis=1)
    return above - np.column_stack([above[:, 1:], np.zeros(len(above))])


def grid_scores(above: np.ndarray, floor: np.ndarray, true: np.ndarray) -> list[np.ndarray]:
    """How good the screener's verdicts are at every threshold set of the grid, flattened in `product`
    order (medium threshold slowest), as the parts of a key to maximise: within the budget first, then
    as the module says."""
    figures = grid_figures(above, floor, true)
    calm_flagged = figures["calm_flagged"]
    within = calm_flagged <= LOW_FLAGGED_BUDGET
    return [within, np.where(within, 0.0, -calm_flagged), figures["urgent_found"] + figures["imminent_found"], figures["medium_flagged"], figures["right"]]


def recall_first(probabilities: list[list[float]], floors: list[str], truth: list[str], target: float = 0.95) -> dict[str, float] | None:
    """The thresholds on the grid that find `target` of the urgent messages at high or above with the
    fewest calm messages flagged (then the most imminent ones as imminent), or None if none does: what the
    urgent target would cost, shown beside the decision on the model card. Not served: the decision
    keeps the calm budget."""
    figures = grid_figures(levels_or_above(np.asarray(probabilities)), np.array([rank(f) for f in floors]), np.array([rank(t) for t in truth]))
    reaching = np.flatnonzero(figures["urgent_found"] >= target)
    if not len(reaching):
        return None
    index = int(reaching[np.lexsort((-figures["imminent_found"][reaching], figures["calm_flagged"][reaching]))[0]])
    return dict(zip(LEVELS[1:], (THRESHOLD_GRID[i] for i in np.unravel_index(index, (len(THRESHOLD_GRID),) * 3))))


def grid_figures(above: np.ndarray, floor: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """The screener's figures at every threshold set of the grid (flattened as in `grid_scores`): the
    share of calm rows flagged, of urgent rows found at high or above, of imminent rows rated imminent,
    of medium rows flagged, and of rows rated right.

    Counted, not tried one by one: a row is raised to a level exactly at the thresholds below the
    number of grid values its probability of that level or above reaches, so how many rows of a group
    stay below given levels at each threshold set is a cumulative count over those numbers.
    """
    size = len(THRESHOLD_GRID)
    reach = np.searchsorted(THRESHOLD_GRID, above[:, 1:], side="right")

    def below(rows: np.ndarray, levels: tuple[int, ...] = (1, 2, 3)) -> np.ndarray:
        """For each threshold set, how many of `rows` the model raises to none of `levels`."""
        counts = np.zeros((size + 1,) * 3)
        index = tuple(reach[rows, level - 1] if level in levels else np.zeros(int(rows.sum()), dtype=int) for level in (1, 2, 3))
        np.add.at(counts, index, 1)
        return counts.cumsum(0).cumsum(1).cumsum(2)[:size, :size, :size].ravel()

    def share(count: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return count / rows.sum() if rows.any() else np.zeros(size**3)

    calm, medium, high, imminent = (true == level for level in range(len(LEVELS)))
    urgent = high | imminent
    right = (
        below(calm & (floor == 0))
        + below(medium & (floor <= 1), (2, 3)) - below(medium & (floor == 0))
        + below(high & (floor <= 2), (3,)) - below(high & (floor <= 1), (2, 3))
        + imminent.sum() - below(imminent & (floor < 3), (3,))
    )
    return {
        "calm_flagged": share(calm.sum() - below(calm & (floor == 0)), calm),
        "urgent_found": share(urgent.sum() - below(urgent & (floor < 2), (2, 3)), urgent),
        "imminent_found": share(imminent.sum() - below(imminent & (floor < 3), (3,)), imminent),
        "medium_flagged": share(medium.sum() - below(medium & (floor == 0)), medium),
        "right": right / len(true),
    }


def choose_windows(decision: Decision, truth: list[str], alone: list[str], windows: list[list[list[float]]]) -> dict[str, float]:
    """The high and imminent thresholds for windows of several messages (medium stays the messages'):
    on validation's conversations (`truth`; `alone`: the service's level from each message screened
    alone; `windows`: the blended probabilities of each conversation's windows of two messages or more),
    the ones that find the most urgent conversations at high or above, plus imminent ones as imminent,
    while flagging at most `WINDOW_CALM_ALLOWANCE` more calm conversations than the messages'
    thresholds do; the highest thresholds among equals."""
    true = np.array([rank(level) for level in truth])
    base = np.array([rank(level) for level in alone])
    owner = np.repeat(np.arange(len(windows)), [len(w) for w in windows])
    above = levels_or_above(np.asarray([row for w in windows for row in w]).reshape(-1, len(LEVELS)))
    calm, urgent, imminent = true == 0, true >= 2, true == 3

    def service(thresholds: dict[str, float]) -> np.ndarray:
        said = np.zeros(len(above), dtype=int)
        for index, level in enumerate(LEVELS[1:], start=1):
            said = np.where(above[:, index] >= thresholds[level], index, said)
        levels = base.copy()
        np.maximum.at(levels, owner, said)
        return levels

    def share(rows: np.ndarray, hit: np.ndarray) -> float:
        return float(hit[rows].mean()) if rows.any() else 0.0

    allowed = share(calm, service(decision.thresholds) >= 1) + WINDOW_CALM_ALLOWANCE
    best, best_score = decision.thresholds, None
    for high in reversed(THRESHOLD_GRID):
        for top in reversed(THRESHOLD_GRID):
            thresholds = {**decision.thresholds, "high": high, "imminent": top}
            levels = service(thresholds)
            if share(calm, levels >= 1) > allowed + 1e-9:
                continue
            score = share(urgent, levels >= 2) + share(imminent, levels == 3)
            if best_score is None or score > best_score + 1e-9:
                best, best_score = thresholds, score
    return best
