# Two entry points for a fresh clone: `make demo` and `make test`. Everything goes into .venv/.
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

MODEL := models/risk/config.json

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
	  content/risk/lexicon.yaml moderation/ngram.py moderation/decision.py
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

demo: install model
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
	$(BIN)/python tests/benchmarks/bench_risk.py
	$(BIN)/python tests/benchmarks/bench_report.py
	$(BIN)/python tests/benchmarks/bench_rooms.py
