# Each target sets itself up: a fresh clone needs only Python >= 3.11 and `make`.
PYTHON ?= python3
VENV ?= .venv
# Users get whatever torch pip resolves for their machine (CUDA where there is one).
# CI pins the CPU build first (see .ci/run), which this requirement then accepts.
TORCH ?= torch
# The quickstart notes when CartPole is solved (a mean return of 475 over the last 20 episodes) and trains on to
# the budget, so what a user sees at the end is whether it stayed solved.
ARGS ?= env=cartpole train.target_return=475 train.stop_at_target=false
PYTEST_ARGS ?=

BIN := $(VENV)/bin

.PHONY: setup train test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	# setuptools tells every editable install that folders named like its packages may shadow them: not news
	# to anyone who runs this from a clone, and it was the only thing a first `make train` wrote to stderr.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

train: $(BIN)/.installed
	$(BIN)/python -m asyncrl.train $(ARGS)

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check asyncrl envs tests benchmarks

clean:
	rm -rf $(VENV) runs outputs
