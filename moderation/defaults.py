"""Where the risk screening finds its data and model unless told otherwise.

Kept apart from `classifier.py` and `train.py` so that reading these (every `tsunagi` command does,
to show its options) does not load torch and transformers.
"""

from __future__ import annotations

import os

from moderation.dataset import CONVERSATIONS_DIR, RISK_DIR

DEFAULT_MODEL_DIR = "models/risk"
DEFAULT_BASE = "sudachi-c-imitator"
# The transformer's passes over the data at most: training stops earlier when validation stops improving.
DEFAULT_EPOCHS = 6
DEFAULT_DATA = RISK_DIR / "train.jsonl"
DEFAULT_VALIDATION = RISK_DIR / "validation.jsonl"
DEFAULT_HELDOUT = RISK_DIR / "heldout.jsonl"
# The conversations' splits: train.jsonl, validation.jsonl, heldout.jsonl.
DEFAULT_CONVERSATIONS = CONVERSATIONS_DIR


def default_model_dir() -> str:
    """`RISK_MODEL_DIR`, or `models/risk`."""
    return os.environ.get("RISK_MODEL_DIR", DEFAULT_MODEL_DIR)

