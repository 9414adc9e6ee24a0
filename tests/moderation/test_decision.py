"""How probabilities become a verdict: thresholds on "this level or above", chosen on validation."""

from __future__ import annotations

import random
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from moderation.decision import (
    LOW_FLAGGED_BUDGET, THRESHOLD_GRID, WEIGHT_GRID, WINDOW_CALM_ALLOWANCE, Decision, choose, choose_windows, grid_scores, levels_or_above, recall_first,
)
from moderation.screening import LEVELS, SEPARATOR, decide

THRESHOLDS = {"medium": 0.6, "high": 0.7, "imminent": 0.5}


def test_a_message_split_between_high_and_imminent_is_still_urgent() -> None:
    # The likeliest level alone (high, 0.45) is below its threshold; high-or-above is 0.8.
    assert decide([0.1, 0.1, 0.45, 0.35], THRESHOLDS) == ("high", pytest.approx(0.8))


def test_the_most_urgent_level_that_reaches_its_threshold_wins() -> None:
    assert decide([0.1, 0.1, 0.2, 0.6], THRESHOLDS) == ("imminent", 0.6)
    assert decide([0.3, 0.4, 0.2, 0.1], THRESHOLDS) == ("medium", pytest.approx(0.7))
    assert decide([0.5, 0.3, 0.1, 0.1], THRESHOLDS) == ("low", 0.5)


def test_a_blend_weighs_the_transformer_against_the_ngram_model() -> None:
    blended = Decision(0.25, THRESHOLDS).blend([[1.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 1.0]])
    assert blended == [[0.25, 0.0, 0.0, 0.75]]
    assert Decision(0.25, THRESHOLDS).blend([[1.0, 0.0, 0.0, 0.0]], None) == [[1.0, 0.0, 0.0, 0.0]]


def _random_rows() -> tuple[list[list[float]], list[str], list[str]]:
    """Probabilities (random, and on the grid so that "level or above" lands exactly on thresholds), truth and floors."""
    rng = random.Random(11)
    rows = [[w / sum(weights) for w in weights] for weights in ([rng.random() for _ in LEVELS] for _ in range(300))]
    rows += [[1 - a - b - c, c, b, a] for a, b, c in product([0.0, 0.05, 0.25, 0.5], repeat=3) if a + b + c <= 1]
    truth = [rng.choice(LEVELS) for _ in rows]
    floors = [rng.choice(LEVELS) if rng.random() < 0.2 else "low" for _ in rows]
    return rows, truth, floors


def _said(rows: list[list[float]], floors: list[str], thresholds: dict[str, float]) -> list[int]:
    """The screener's level (as a rank) of each row at `thresholds`: the model's verdict raised by the floor."""
    return [max(LEVELS.index(decide(row, thresholds)[0]), LEVELS.index(f)) for row, f in zip(rows, floors)]


def _screened(rows: list[list[float]], floors: list[str], truth: list[str], thresholds: dict[str, float]) -> tuple[float, float]:
    """The screener's share of urgent rows found at high or above and of calm rows flagged, at `thresholds`."""
    said = _said(rows, floors, thresholds)
    urgent = [s >= 2 for s, t in zip(said, truth) if LEVELS.index(t) >= 2]
    calm = [s >= 1 for s, t in zip(said, truth) if t == "low"]
    return sum(urgent) / len(urgent), sum(calm) / len(calm)


def test_recall_first_reaches_the_urgent_target_with_the_fewest_calm_flagged_on_the_grid() -> None:
    rows, truth, floors = _random_rows()
    chosen = recall_first(rows, floors, truth, target=0.8)
    urgent, calm = _screened(rows, floors, truth, chosen)
    assert urgent >= 0.8
    for index, (m, h, i) in enumerate(product(THRESHOLD_GRID, repeat=3)):
        if index % 13 == 0:
            other_urgent, other_calm = _screened(rows, floors, truth, {"medium": m, "high": h, "imminent": i})
            assert other_urgent < 0.8 or other_calm >= calm
    assert recall_first(rows, floors, truth, target=1.01) is None


def test_the_thresholds_are_chosen_with_the_same_verdicts_the_screener_gives() -> None:
    # `choose` counts how every threshold set of the grid does instead of trying each; the counts must
    # be what the screener's own verdicts (raised by the floor) give, at the boundaries too: probabilities
    # on the grid make "level or above" land exactly on a threshold.
    rows, truth, floors = _random_rows()
    scores = grid_scores(levels_or_above(np.array(rows)), np.array([LEVELS.index(f) for f in floors]), np.array([LEVELS.index(t) for t in truth]))
    for index, (m, h, i) in enumerate(product(THRESHOLD_GRID, repeat=3)):
        if index % 97:
            continue
        said = _said(rows, floors, {"medium": m, "high": h, "imminent": i})
        true = [LEVELS.index(t) for t in truth]

        def share(pairs: list[tuple[int, int]], flagged) -> float:
            return sum(flagged(s) for s, _ in pairs) / len(pairs)

        calm = share([(s, t) for s, t in zip(said, true) if t == 0], lambda s: s >= 1)
        urgent = share([(s, t) for s, t in zip(said, true) if t >= 2], lambda s: s >= 2) + share([(s, t) for s, t in zip(said, true) if t == 3], lambda s: s == 3)
        medium = share([(s, t) for s, t in zip(said, true) if t == 1], lambda s: s >= 1)
        right = sum(s == t for s, t in zip(said, true)) / len(true)
        within = calm <= LOW_FLAGGED_BUDGET
        expected = (float(within), 0.0 if within else -calm, urgent, medium, right)
        assert tuple(float(part[index]) for part in scores) == pytest.approx(expected)


def _validation(rng: random.Random, count: int = 400) -> tuple[list[str], list[list[float]], list[list[float]]]:
    """Messages whose n-gram probabilities know the level (noisily) and whose transformer's are noise."""
    truth, informed, noise = [], [], []
    for _ in range(count):
        level = rng.choice(LEVELS)
        weights = [rng.random() * 0.6 for _ in LEVELS]
        weights[LEVELS.index(level)] += 1.0
        informed.append([w / sum(weights) for w in weights])
        guess = [rng.random() for _ in LEVELS]
        noise.append([g / sum(guess) for g in guess])
        truth.append(level)
    return truth, informed, noise


def test_choosing_keeps_the_calm_messages_flagged_within_budget_and_trusts_the_reader_that_knows() -> None:
    truth, informed, noise = _validation(random.Random(3))
    decision = choose(noise, informed, ["low"] * len(truth), truth)
    assert decision.transformer_weight == min(WEIGHT_GRID)
    said = [decide(p, decision.thresholds)[0] for p in decision.blend(noise, informed)]
    calm = [s for s, t in zip(said, truth) if t == "low"]
    assert sum(s != "low" for s in calm) / len(calm) <= LOW_FLAGGED_BUDGET
    urgent = [s for s, t in zip(said, truth) if t in ("high", "imminent")]
    assert sum(s in ("high", "imminent") for s in urgent) / len(urgent) > 0.8


def test_the_floor_counts_against_the_budget_and_beyond_it_the_fewest_calm_messages_flagged_win() -> None:
    truth, informed, noise = _validation(random.Random(5))
    # The floor alone flags a fifth of the calm messages: more than the budget whatever the model does,
    # so the model must add no calm message to those.
    calm = [i for i, t in enumerate(truth) if t == "low"]
    floors = ["medium" if i in calm[::5] else "low" for i in range(len(truth))]
    decision = choose(noise, informed, floors, truth)
    said = [decide(p, decision.thresholds)[0] for p in decision.blend(noise, informed)]
    assert all(said[i] == "low" for i in calm if floors[i] == "low")


def test_a_decision_is_kept_beside_its_model_and_a_model_without_one_gets_the_default(tmp_path: Path) -> None:
    assert Decision.load(tmp_path) == Decision()
    Decision(0.3, THRESHOLDS).save(tmp_path)
    assert Decision.load(tmp_path) == Decision(0.3, THRESHOLDS)
    windows = {"medium": 0.6, "high": 0.4, "imminent": 0.2}
    Decision(0.3, THRESHOLDS, windows).save(tmp_path)
    assert Decision.load(tmp_path) == Decision(0.3, THRESHOLDS, windows)
    (tmp_path / "decision.json").write_text('{"transformer_weight": 2, "thresholds": {"medium": 0.5, "high": 0.5, "imminent": 0.5}}')
    with pytest.raises(ValueError, match="probabilities"):
        Decision.load(tmp_path)
    (tmp_path / "decision.json").write_text(
        '{"transformer_weight": 0.2, "thresholds": {"medium": 0.5, "high": 0.5, "imminent": 0.5}, "window_thresholds": {"medium": 0.5, "high": 5, "imminent": 0.5}}'
    )
    with pytest.raises(ValueError, match="probabilities"):
        Decision.load(tmp_path)


def test_a_window_of_several_messages_is_judged_at_its_own_thresholds() -> None:
    windows = {"medium": 0.6, "high": 0.3, "imminent": 0.2}
    decision = Decision(0.3, THRESHOLDS, windows)
    assert decision.thresholds_for(f"もう疲れた{SEPARATOR}今までありがとう") == windows
    assert decision.thresholds_for("今までありがとう") == THRESHOLDS
    assert Decision(0.3, THRESHOLDS).thresholds_for(f"a{SEPARATOR}b") == THRESHOLDS


def _row(above_high: float) -> list[float]:
    """Probabilities with `above_high` of high or above (all of it high)."""
    return [1 - above_high, 0.0, above_high, 0.0]


def test_window_thresholds_find_more_urgent_conversations_at_a_small_calm_cost() -> None:
    # Calm conversations: 97 whose windows look calm, 1 a little alarming (0.45 high or above) and 2
    # more so (0.3); urgent ones that show only in their windows, half at 0.45, half at 0.3. Lowering the
    # high threshold to 0.45 finds half the urgent ones for one calm conversation (within the
    # allowance); 0.3 would find all for three, over it.
    calm = [[_row(0.05), _row(0.05)]] * 97 + [[_row(0.45)]] + [[_row(0.3)]] * 2
    urgent = [[_row(0.1), _row(0.45)]] * 20 + [[_row(0.3)]] * 20
    truth = ["low"] * len(calm) + ["high"] * len(urgent)
    messages = Decision(0.3, {"medium": 0.99, "high": 0.6, "imminent": 0.5})
    chosen = choose_windows(messages, truth, ["low"] * len(truth), calm + urgent)
    assert chosen["high"] == 0.45 and chosen["medium"] == 0.99
    assert 1 / 100 <= WINDOW_CALM_ALLOWANCE < 3 / 100
    # What the messages alone already flag costs the windows nothing: with the two calm conversations at
    # 0.3 flagged by their messages, 0.3 adds one calm conversation and finds every urgent one.
    flagged_alone = ["low"] * 98 + ["medium"] * 2 + ["low"] * len(urgent)
    assert choose_windows(messages, truth, flagged_alone, calm + urgent)["high"] == 0.3
