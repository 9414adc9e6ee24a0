"""`tsunagi risk ...`: train the risk model, evaluate the screening, classify messages from a file.

Mounted by `bot/cli.py`; runnable alone as `python -m moderation.cli`. The model directory defaults
to `RISK_MODEL_DIR` (or `models/risk`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from moderation.dataset import CONVERSATIONS_DIR, RISK_DIR, read_jsonl
from moderation.defaults import DEFAULT_BASE, DEFAULT_CONVERSATIONS, DEFAULT_DATA, DEFAULT_EPOCHS, DEFAULT_HELDOUT, DEFAULT_VALIDATION, default_model_dir
from moderation.lexicon import LexiconError, load_lexicon

app = typer.Typer(help="Risk screening: the keyword floor and the model.", no_args_is_help=True)

ModelOption = Annotated[str | None, typer.Option("--model", help="Model directory (default: $RISK_MODEL_DIR or models/risk).")]


def _lexicon_or_exit():
    try:
        return load_lexicon()
    except LexiconError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        typer.secho(f"risk: the lexicon has {len(exc.problems)} problem(s)", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None


@app.command()
def train(
    base: Annotated[str, typer.Option(help="'scratch', a sudachi-c-imitator-transformers package folder, a model folder, or hub:owner/name.")] = DEFAULT_BASE,
    data: Annotated[Path, typer.Option(help="Training JSONL ({text, level, tags}).")] = DEFAULT_DATA,
    out: Annotated[Path | None, typer.Option(help="Where to write the model (default: $RISK_MODEL_DIR or models/risk).")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the data at most (training stops earlier when validation stops improving).")] = DEFAULT_EPOCHS,
    quick: Annotated[bool, typer.Option(help="The n-gram model alone, in minutes: screening with more than keywords while the transformer trains.")] = False,
    validation: Annotated[Path, typer.Option(help="Validation JSONL on which the blend and thresholds are chosen.")] = DEFAULT_VALIDATION,
    heldout: Annotated[Path, typer.Option(help="Held-out JSONL for the model card's figures.")] = DEFAULT_HELDOUT,
    conversations: Annotated[Path, typer.Option(help="Folder with the conversations' train, validation and heldout JSONL.")] = DEFAULT_CONVERSATIONS,
) -> None:
    """Train the risk model on CPU (transformer and n-gram model) and write it with MODEL_CARD.md."""
    from moderation.train import train as run

    _lexicon_or_exit()  # the held-out figures at the end need it: fail now, not after minutes of training
    logging.basicConfig(level=logging.INFO, format="risk: %(message)s")
    card = run(base=base, data=data, out=out or Path(default_model_dir()), epochs=epochs, validation=validation, heldout=heldout, quick=quick,
                conversations=conversations)
    typer.echo(f"trained {card['base']} on {card['train_examples']} examples in {card['seconds']['total']} s → {out or default_model_dir()}")


ConversationsFlag = Annotated[bool, typer.Option("--conversations", help="The file holds conversations ({\"messages\": [...]}) instead of messages.")]


def _classifier_or_none(model: str | None):
    from moderation.classifier import RiskClassifier

    try:
        return RiskClassifier(model or default_model_dir())
    except Exception as exc:
        typer.secho(f"risk: model unavailable, lexicon only: {exc}", err=True, fg=typer.colors.YELLOW)
        return None


@app.command("eval")
def evaluate(
    file: Annotated[Path | None, typer.Argument(help="Labelled JSONL ({text, level}, or {messages, level, kind} with --conversations); "
                                                     "default: the held-out split and each blind set.")] = None,
    conversations: ConversationsFlag = False,
    model: ModelOption = None,
) -> None:
    """Figures for the keyword floor, the model and both combined (model skipped if missing); with
    --conversations, for each message alone, the conversation reader and the service."""
    from moderation.evaluate import evaluate as run, format_report

    lexicon = _lexicon_or_exit()
    folder = CONVERSATIONS_DIR if conversations else RISK_DIR
    files = [file] if file else [folder / "heldout.jsonl", *sorted(folder.glob("blind*.jsonl"))]
    classifier = None if conversations else _classifier_or_none(model)
    for path in files:
        if len(files) > 1:
            typer.echo(f"== {path}")
        if conversations:
            typer.echo(_conversation_report(read_jsonl(path), model, lexicon))
        else:
            typer.echo(format_report(run(read_jsonl(path), classifier, lexicon)))


def _conversation_report(conversations: list[dict], model: str | None, lexicon) -> str:
    from moderation.evaluate import evaluate_conversations, format_conversations
    from moderation.screener import Screener

    screener = Screener(model or default_model_dir(), lexicon)
    try:
        screenings = asyncio.run(screener.screen_conversations([c["messages"] for c in conversations]))
    finally:
        screener.close()
    if screener.model_error:
        typer.secho(f"risk: model unavailable, lexicon only: {screener.model_error}", err=True, fg=typer.colors.YELLOW)
    return format_conversations(evaluate_conversations(conversations, screenings))


@app.command()
def classify(
    file: Annotated[Path, typer.Argument(help="JSONL with {\"text\": ...} (or {\"messages\": [...]} with --conversations) per line; '-' reads standard input.")],
    conversations: ConversationsFlag = False,
    model: ModelOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write (default: standard output).")] = None,
) -> None:
    """Screen each line's text; write one JSONL line per input, in order (level, score, source, tags).

    With --conversations, one verdict per conversation, as the service would reach it reading the
    messages in order (never lower than any message alone), with the reader's verdict on the whole
    conversation and each message's level alone; the messages are not repeated.
    """
    from moderation.screener import Screener

    lexicon = _lexicon_or_exit()
    lines = sys.stdin.read().splitlines() if str(file) == "-" else file.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    screener = Screener(model or default_model_dir(), lexicon)
    try:
        if conversations:
            verdicts = asyncio.run(screener.screen_conversations([row["messages"] for row in rows]))
            out = [verdict.as_dict() for verdict in verdicts]
        else:
            texts = [row["text"] for row in rows]
            out = [{"text": t, **s.as_dict()} for t, s in zip(texts, asyncio.run(screener.screen(texts)))]
    finally:
        screener.close()
    if screener.model_error:
        typer.secho(f"risk: {screener.model_error}", err=True, fg=typer.colors.YELLOW)
    written = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in out)
    if output:
        output.write_text(written, encoding="utf-8")
    else:
        sys.stdout.write(written)


if __name__ == "__main__":
    app()
