# Two commands set up a fresh machine: `make run` (the dashboard) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint typecheck fmt bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench,postgres,fast]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/workerpool-tui

serve: $(STAMP)
	$(BIN)/workerpool-tui serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) lint
	$(BIN)/pytest -n 2

bench: $(STAMP)
	$(BIN)/python bench/pool.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
