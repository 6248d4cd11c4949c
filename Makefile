# taskstream: `make help` lists the targets.
SHELL := /bin/bash
UV ?= uv
RUN := $(UV) run --frozen
WORKER_ARGS ?= --loglevel INFO
export PYTHONUNBUFFERED := 1

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: install
install: ## Install the Python environment from uv.lock (installs uv if missing)
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv
	$(UV) sync --frozen

.PHONY: run
run: install web ## Run the worker, the API and the web app against REDIS_URL until Ctrl-C
	@echo "taskstream: web app on http://$${WEB_HOST:-127.0.0.1}:$${WEB_PORT:-5173}, API on http://$${API_HOST:-127.0.0.1}:$${API_PORT:-8000} (docs at /docs), Redis at $${REDIS_URL:-redis://127.0.0.1:6379/0}"
	@trap 'kill 0 2>/dev/null' INT TERM EXIT; \
	  $(RUN) celery -A taskstream.worker.app worker $(WORKER_ARGS) & \
	  $(RUN) python -m taskstream.api & \
	  $(RUN) python -m taskstream.web & \
	  wait -n

frontend/node_modules/.installed: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

.PHONY: web
web: frontend/node_modules/.installed ## Build the web app into frontend/dist
	cd frontend && npm run build

.PHONY: api
api: ## Run one API process in the foreground (API_HOST, API_PORT, REDIS_URL)
	$(RUN) python -m taskstream.api

.PHONY: worker
worker: ## Run one Celery worker in the foreground (REDIS_URL; WORKER_ARGS for celery)
	$(RUN) celery -A taskstream.worker.app worker $(WORKER_ARGS)

.PHONY: lint
lint: ## ruff: lint and formatting
	$(RUN) ruff check .
	$(RUN) ruff format --check .

.PHONY: typecheck
typecheck: ## mypy --strict on the backend and the tests
	$(RUN) mypy

.PHONY: test
test: install web lint typecheck ## Lint, type-check and run every test (needs redis-server, chromium)
	cd frontend && npm test
	$(RUN) pytest
