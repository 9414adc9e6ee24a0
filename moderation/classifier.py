"""The risk model: a sequence classifier over the four levels, loaded from a local directory.

Any `AutoModelForSequenceClassification` directory with its tokenizer works; `tsunagi risk train`
writes one with an n-gram model beside it (`ngram.py`) and the way to blend and decide chosen on
validation (`decision.py`). A hub id works too where a hub is reachable, written `hub:owner/name` so that a missing
local directory is reported as missing instead of being looked up on the network. Prediction runs in micro-batches without
gradients, on at most two threads: the machines this runs on have two cores and the event loop
needs one of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from moderation.decision import Decision, from_levels_or_above
from moderation.ngram import NGRAM_FILE, NgramModel
from moderation.screening import LEVELS, decide

MAX_LENGTH = 128
BATCH_SIZE = 32
HUB_PREFIX = "hub:"
# Set in the config of a model whose head reads each level above the lowest as "this level or above"
# (`train.py` trains it so): its logits are read through sigmoids, not a softmax.
ORDERED = "levels_read_in_order"


def set_threads() -> None:
    """Use two threads at most: more only contend with the event loop on small machines."""
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def resolve(model: str | Path) -> str:
    """What `from_pretrained` should load: a hub id for `hub:...`, else a local directory that must hold a model."""
    text = str(model)
    if text.startswith(HUB_PREFIX):
        return text.removeprefix(HUB_PREFIX)
    path = Path(text).expanduser()
    if not (path / "config.json").is_file() and not (path / NGRAM_FILE).is_file():
        raise FileNotFoundError(f"no model in {path} (config.json and {NGRAM_FILE} missing); train one with `tsunagi risk train`")
    return str(path)


def transformer_probabilities(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str], columns: list[int], batch_size: int = BATCH_SIZE
) -> list[list[float]]:
    """For each text, in order, the model's probability of each level (its logits' `columns`, in `LEVELS` order)."""
    # Batches of texts of like length, so that a long message does not pad a batch of short ones.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: list[list[float]] = [[] for _ in texts]
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in chosen], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt", return_token_type_ids=False
            )
            logits = model(**batch).logits[:, columns]
            if getattr(model.config, ORDERED, False):
                probabilities = from_levels_or_above(logits[:, 1:].sigmoid().numpy())
            else:
                probabilities = logits.softmax(-1).numpy()
            for i, row in zip(chosen, probabilities.tolist()):
                results[i] = row
    return results


def level_columns(model: PreTrainedModel) -> list[int]:
    """The column of each level in `LEVELS` order, whatever order the model keeps its labels in."""
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if sorted(labels) != sorted(LEVELS):
        raise ValueError(f"labels {labels} are not the risk levels {LEVELS}")
    return [labels.index(level) for level in LEVELS]


class RiskClassifier:
    """A fine-tuned transformer whose labels are the level names, the n-gram model trained beside it,
    and the decision that blends their probabilities into a verdict.

    A directory may hold the n-gram model alone: the quick model `tsunagi risk train --quick` writes in a
    few minutes, so that a fresh machine screens with more than keywords while the transformer trains.
    """

    def __init__(self, model: str | Path, batch_size: int = BATCH_SIZE) -> None:
        source = resolve(model)
        set_threads()
        local = Path(source)
        self.model: PreTrainedModel | None = None
        self.tokenizer: PreTrainedTokenizerBase | None = None
        if (local / "config.json").is_file() or not local.is_dir():
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            self.model = AutoModelForSequenceClassification.from_pretrained(source)
            self.model.eval()
            self.columns = level_columns(self.model)
        self.batch_size = batch_size
        self.ngram = NgramModel.load(local) if (local / NGRAM_FILE).is_file() else None
        self.decision = Decision.load(local)

    @property
    def readers(self) -> list[str]:
        """Which readers this model has: "transformer", "n-gram" or both."""
        return [name for name, reader in (("transformer", self.model), ("n-gram", self.ngram)) if reader is not None]

    def probabilities(self, texts: list[str]) -> list[list[float]]:
        """For each text, in order, the blended probability of each level in `LEVELS` order."""
        ngram = self.ngram.probabilities(texts) if self.ngram else None
        if self.model is None:
            return ngram
        return self.decision.blend(self.transformer_probabilities(texts), ngram)

    def transformer_probabilities(self, texts: list[str]) -> list[list[float]]:
        """The transformer's probabilities alone, in the same form."""
        return transformer_probabilities(self.model, self.tokenizer, texts, self.columns, self.batch_size)

    def drivers(self, rated: list[tuple[str, str]]) -> list[list[tuple[int, int]]]:
        """For each (text, level the model gave it), where the words are that drove it (`NgramModel.drivers`;
        none without an n-gram model)."""
        return [self.ngram.drivers(text, level) if self.ngram else [] for text, level in rated]

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """The model's verdict on each text, in order: its level and the probability that decided it (a
        window of several messages at the window thresholds)."""
        return [decide(p, self.decision.thresholds_for(text)) for text, p in zip(texts, self.probabilities(texts))]
