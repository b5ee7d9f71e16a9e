# One-command entry points. Everything runs from a local virtualenv in .venv.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Set up and run the demo shop on embedded defaults (SQLite, local memory, eager Celery).
demo: $(STAMP)
	$(BIN)/python manage.py demo_setup
	@echo ""
	@echo "  Demo shop:  http://$(HOST):$(PORT)/"
	@echo "  Admin:      http://$(HOST):$(PORT)/admin/  (admin / admin)"
	@echo ""
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## Set up and run the whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_middleware.py

clean:
	rm -rf $(VENV) .nox var build dist *.egg-info
