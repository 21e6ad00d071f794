# `make demo` and `make test` set everything up on a fresh machine: they create .venv with pip
# and install the project (editable, with the dev and models extras) when it is missing or pyproject changed.
PYTHON ?= python3
# test processes (pytest-xdist); test files stay whole on one process, so module fixtures run once
TEST_WORKERS ?= 2
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean-outputs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,models]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/faceunlearn demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

clean-outputs:
	rm -rf lightning_logs/* checkpoints/*
	touch lightning_logs/.gitkeep checkpoints/.gitkeep
