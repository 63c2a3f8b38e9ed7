# Two commands on a fresh machine with only Python 3.10+:
#   make demo   - the main job on the embedded default (no data, no network)
#   make test   - the test suite (ruff, then pytest)
# Both create .venv on first use and reinstall only when pyproject.toml or constraints.txt change.
# CI (.ci/run) also runs `make golden-check`: a reduced synthetic suite checked against
# leaderboards/golden-synthetic.yaml (`make golden` regenerates it, `make leaderboards` the
# committed demo leaderboard).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint setup clean golden golden-check leaderboards

GOLDEN_RUN = $(BIN)/lifeiqa-bench run --protocol ci-golden --synth-size tiny --runs .golden-runs \
	--suite golden

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lifeiqa-bench demo

lint: $(STAMP)
	$(BIN)/ruff check lifeiqa harness tests

test: lint
	$(BIN)/python -m pytest -q

golden-check: $(STAMP)
	$(GOLDEN_RUN)
	$(BIN)/lifeiqa-bench check .golden-runs/golden --against leaderboards/golden-synthetic.yaml \
		--require-all --metric both --report .golden-runs/check.json

golden: $(STAMP)
	$(GOLDEN_RUN) --force
	$(BIN)/lifeiqa-bench check .golden-runs/golden --write-golden leaderboards/golden-synthetic.yaml

leaderboards: $(STAMP)
	$(BIN)/lifeiqa-bench demo --leaderboard-out leaderboards/synthetic

clean:
	rm -rf $(VENV) .pytest_cache .golden-runs
