# Two commands on a fresh machine with only Python 3.10+:
#   make demo   - the main job on the embedded default (no data, no network)
#   make test   - the test suite (ruff, then pytest)
# Both create .venv on first use and reinstall only when pyproject.toml or constraints.txt change.
# `make docs` builds the documentation site into site/ (mkdocs build --strict).
# CI (.ci/run) also runs `make golden-check`: the regression gate, a synthetic suite checked unit
# by unit against leaderboards/golden-synthetic.yaml (`make golden` regenerates it and measures
# its rerun noise; `make mutation-check` proves that injected regressions fail it; `make
# leaderboards` regenerates the committed demo leaderboard). See scripts/gate.py.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# extra pip install options (.ci/run passes --no-compile)
PIP_INSTALL_FLAGS ?=

.PHONY: demo test test-fast lint typecheck docs setup clean golden golden-check mutation-check leaderboards

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_INSTALL_FLAGS) -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lifeiqa-bench demo

lint: $(STAMP)
	$(BIN)/ruff check lifeiqa harness tests scripts examples

# the types of lifeiqa/ and harness/, strict (pyproject.toml's [tool.mypy])
typecheck: $(STAMP)
	$(BIN)/mypy

# in parallel, one worker a core (pytest-xdist), a test file's tests on one worker: the Slurm
# tests share one cluster. (Not --dist loadgroup: under pytest 9 xdist 3.8 ignores its groups.)
test: lint typecheck
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# between two edits: everything but the slow and browser tiers (pyproject.toml's markers)
test-fast: lint typecheck
	$(BIN)/python -m pytest -q -n auto --dist loadfile -m "not slow and not browser"

# the documentation site, built into site/ (mkdocs.yml; the reference pages are generated)
docs: $(STAMP)
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

golden-check: $(STAMP)
	$(BIN)/python scripts/gate.py check

golden: $(STAMP)
	$(BIN)/python scripts/gate.py write

mutation-check: $(STAMP)
	$(BIN)/python scripts/gate.py mutations --report .golden-runs/mutations.json

# every verdict is re-tested under each cell's sd measured from the demo's own noise reruns
# (harness/results/stability.py); scripts/noise_vs_hosts.py sets it beside the sd between two
# hosts' boards of the same units (leaderboards/noise/README.md)
leaderboards: $(STAMP)
	$(BIN)/lifeiqa-bench demo --leaderboard-out leaderboards/synthetic

clean:
	rm -rf $(VENV) .pytest_cache .golden-runs site
