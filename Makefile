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
run: install web ## Run Redis (if none answers at REDIS_URL), a worker, the API and the web app until Ctrl-C
	$(RUN) python -m taskstream.launcher

frontend/node_modules/.installed: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

.PHONY: web
web: frontend/node_modules/.installed ## Build the web app into frontend/dist
	cd frontend && npm run build

.PHONY: types
types: frontend/node_modules/.installed ## Regenerate the JS client's REST types (frontend/client/types/api.d.ts) from the API's OpenAPI description
	set -o pipefail; $(RUN) python -c 'import json; from taskstream.api.main import create_app; from taskstream.settings import Settings; print(json.dumps(create_app(Settings()).openapi()))' \
		| (cd frontend && npm run --silent api-types -- -o client/types/api.d.ts)

.PHONY: api
api: ## Run one API process in the foreground (API_HOST, API_PORT, REDIS_URL)
	$(RUN) python -m taskstream.api

.PHONY: worker
worker: ## Run one Celery worker in the foreground (REDIS_URL; WORKER_ARGS for celery)
	$(RUN) celery -A taskstream.worker.app worker $(WORKER_ARGS)

.PHONY: bench
bench: ## Benchmarks against the designs taskstream replaces; rewrites docs/benchmarks.md (~20 min)
	$(UV) run --frozen --group bench python -m bench

.PHONY: bench-quick
bench-quick: ## The benchmarks at small scale (~2 min); fails if an event is lost or duplicated
	$(UV) run --frozen --group bench python -m bench --quick

.PHONY: lint
lint: ## ruff: lint and formatting
	$(RUN) ruff check .
	$(RUN) ruff format --check .

.PHONY: typecheck
typecheck: ## mypy --strict on the backend and the tests
	$(RUN) mypy

.PHONY: test
test: install web lint typecheck ## Lint, type-check, run every test and the quick benchmarks (needs redis-server, chromium)
	cd frontend && npm test
	$(RUN) pytest
	$(MAKE) --no-print-directory bench-quick
