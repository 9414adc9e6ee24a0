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

from moderation.dataset import read_jsonl
from moderation.defaults import DEFAULT_BASE, DEFAULT_DATA, DEFAULT_EPOCHS, DEFAULT_HELDOUT, DEFAULT_VALIDATION, default_model_dir
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
) -> None:
    """Train the risk model on CPU (transformer and n-gram model) and write it with MODEL_CARD.md."""
    from moderation.train import train as run

    _lexicon_or_exit()  # the held-out figures at the end need it: fail now, not after minutes of training
    logging.basicConfig(level=logging.INFO, format="risk: %(message)s")
    card = run(base=base, data=data, out=out or Path(default_model_dir()), epochs=epochs, validation=validation, heldout=heldout, quick=quick)
    typer.echo(f"trained {card['base']} on {card['train_examples']} examples in {card['seconds']['total']} s → {out or default_model_dir()}")


@app.command("eval")
def evaluate(file: Annotated[Path, typer.Argument(help="Labelled JSONL ({text, level}).")], model: ModelOption = None) -> None:
    """Figures for the keyword floor, the model and both combined (model skipped if missing)."""
    from moderation.classifier import RiskClassifier
    from moderation.evaluate import evaluate as run, format_report

    lexicon = _lexicon_or_exit()
    classifier = None
    try:
        classifier = RiskClassifier(model or default_model_dir())
    except Exception as exc:
        typer.secho(f"risk: model unavailable, lexicon only: {exc}", err=True, fg=typer.colors.YELLOW)
    typer.echo(format_report(run(read_jsonl(file), classifier, lexicon)))


@app.command()
def classify(
    file: Annotated[Path, typer.Argument(help="JSONL with {\"text\": ...} per line; '-' reads standard input.")],
    model: ModelOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write (default: standard output).")] = None,
) -> None:
    """Screen each line's text; write one JSONL line per input, in order (level, score, source, tags)."""
    from moderation.screener import Screener

    lexicon = _lexicon_or_exit()
    lines = sys.stdin.read().splitlines() if str(file) == "-" else file.read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    screener = Screener(model or default_model_dir(), lexicon)
    try:
        screenings = asyncio.run(screener.screen(texts))
    finally:
        screener.close()
    if screener.model_error:
        typer.secho(f"risk: {screener.model_error}", err=True, fg=typer.colors.YELLOW)
    rows = "".join(json.dumps({"text": t, **s.as_dict()}, ensure_ascii=False) + "\n" for t, s in zip(texts, screenings))
    if output:
        output.write_text(rows, encoding="utf-8")
    else:
        sys.stdout.write(rows)


if __name__ == "__main__":
    app()
