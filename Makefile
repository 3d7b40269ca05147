# The two commands: `make run` serves on http://127.0.0.1:8000, `make test` checks everything.
# `make mcp` serves the MCP endpoint for agents on http://127.0.0.1:8001/mcp (docs/mcp.md).
VENV := .venv
BIN := $(VENV)/bin
SYSTEM_PYTHON ?= $(shell command -v python3.11 || command -v python3)
INSTALLED := $(VENV)/.installed

.PHONY: install run mcp migrate test soak lint format bench clean

install: $(INSTALLED)

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# The app runs as production unless APP_ENV says otherwise; `make run` is for
# trying it out, so here development is the default (an APP_ENV already set wins).
DEV_ENV := APP_ENV=$${APP_ENV:-development}

migrate: install
	$(DEV_ENV) $(BIN)/flask --app taskapi db upgrade

run: migrate
	$(DEV_ENV) $(BIN)/gunicorn wsgi:app

# The MCP server: its own process (uvicorn), on the same database as `make run`.
mcp: migrate
	$(DEV_ENV) $(BIN)/uvicorn asgi:app --host 127.0.0.1 --port $${MCP_PORT:-8001} --no-access-log

# The reminder dispatcher (Web Push), next to `make run`; Ctrl-C stops it.
.PHONY: reminders
reminders: migrate
	$(DEV_ENV) $(BIN)/flask --app taskapi send-reminders

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest

# Load, outage and fuzzing runs against real servers (a few minutes; CI runs it too).
soak: install
	$(BIN)/pytest -m soak

# Both need wrk on PATH and say how to install it when it is not.
bench: install
	$(BIN)/python bench/run.py

# One instance against two behind nginx, through PgBouncer (docs/scaling.md).
.PHONY: bench-instances bench-mcp
bench-instances: install
	$(BIN)/python bench/instances.py

# MCP tool calls at 16 concurrent sessions, production configuration (docs/performance.md).
bench-mcp: install
	$(BIN)/python bench/mcp.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
