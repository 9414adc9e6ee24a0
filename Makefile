# Two entry points for a fresh clone: `make demo` and `make test`. Everything goes into .venv/.
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

MODEL := models/risk/config.json
# Any model at all: the quick one (keyword floor and n-gram reader) has this file, the full one too.
QUICK_MODEL := models/risk/ngram.joblib

.PHONY: demo test install model browser bench screenshots

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch that lies on this machine's disk; a plain `torch` would pull CUDA.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(INSTALLED)

# The risk classifier, trained here from the project's own data (weights never go into git). Retrained
# when the data, the lexicon (the thresholds are chosen with its floor) or the training code changes.
$(MODEL): $(INSTALLED) content/risk/train.jsonl content/risk/validation.jsonl moderation/train.py moderation/dataset.py \
	  content/risk/lexicon.yaml moderation/ngram.py moderation/decision.py moderation/screening.py \
	  content/risk/conversations/train.jsonl content/risk/conversations/validation.jsonl
	$(BIN)/tsunagi risk train

model: $(MODEL)

# Debian's Chromium for the browser tests (Playwright cannot download browsers here), with a
# Japanese font so that screenshots are readable.
browser:
	command -v chromium >/dev/null && fc-list :lang=ja | grep -q . || \
	  (apt-get update -qq && apt-get install -y -qq chromium fonts-ipafont-gothic >/dev/null)

# The console's pictures in the README, taken from a scripted demo evening.
screenshots: install browser
	$(BIN)/python -m bot.devtools.screenshots docs/screenshots

# The demo serves at once: the keyword floor screens from the first message, then the quick model (a few
# minutes), then the full one, each trained in the background and picked up live by the screener; the
# supervisor's page says which screens. One training at a time (flock); its output goes to models/train.log.
demo: install
	mkdir -p models
	(flock -n models/.training sh -c 'test -f $(QUICK_MODEL) || $(BIN)/tsunagi risk train --quick; $(MAKE) model' \
	  >> models/train.log 2>&1 &)
	$(BIN)/tsunagi db upgrade
	$(BIN)/tsunagi demo

# Helplines not checked against their source for half a year are listed as a warning, not a failure.
test: install model browser
	$(BIN)/tsunagi content check --stale 180
	$(BIN)/pytest

bench: install
	$(BIN)/python tests/benchmarks/bench_webhook.py
	$(BIN)/python tests/benchmarks/bench_end_to_end.py
	$(BIN)/python tests/benchmarks/bench_console.py
	$(BIN)/python tests/benchmarks/bench_crypto.py
	$(BIN)/python tests/benchmarks/bench_risk.py
	$(BIN)/python tests/benchmarks/bench_report.py
	$(BIN)/python tests/benchmarks/bench_rooms.py
