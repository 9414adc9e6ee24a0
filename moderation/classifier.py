"""The risk model: a sequence classifier over the four levels, loaded from a local directory.

Any `AutoModelForSequenceClassification` directory with its tokenizer works (`tsunagi risk train`
writes one); a hub id works too where a hub is reachable, written `hub:owner/name` so that a missing
local directory is reported as missing instead of being looked up on the network. Prediction runs in micro-batches without
gradients, on at most two threads: the machines this runs on have two cores and the event loop
needs one of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from moderation.screening import LEVELS

MAX_LENGTH = 128
BATCH_SIZE = 32
HUB_PREFIX = "hub:"


def set_threads() -> None:
    """Use two threads at most: more only contend with the event loop on small machines."""
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def resolve(model: str | Path) -> str:
    """What `from_pretrained` should load: a hub id for `hub:...`, else a local directory that must hold a model."""
    text = str(model)
    if text.startswith(HUB_PREFIX):
        return text.removeprefix(HUB_PREFIX)
    path = Path(text).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model in {path} (config.json missing); train one with `tsunagi risk train`")
    return str(path)


class RiskClassifier:
    """A fine-tuned classifier whose labels are the level names."""

    def __init__(self, model: str | Path, batch_size: int = BATCH_SIZE) -> None:
        source = resolve(model)
        set_threads()
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModelForSequenceClassification.from_pretrained(source)
        self.model.eval()
        self.batch_size = batch_size
        labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        unknown = set(labels) - set(LEVELS)
        if unknown:
            raise ValueError(f"{source}: labels {sorted(unknown)} are not risk levels {LEVELS}")
        self.labels = labels

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """The level and its probability for each text, in order."""
        results: list[tuple[str, float]] = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=MAX_LENGTH,
                    return_tensors="pt",
                    return_token_type_ids=False,
                )
                probabilities = self.model(**batch).logits.softmax(-1)
                scores, indices = probabilities.max(-1)
                results.extend((self.labels[i], float(s)) for i, s in zip(indices.tolist(), scores.tolist()))
        return results
