# taskstream: `make help` lists the targets.
SHELL := /bin/bash
UV ?= uv
# Each target syncs what it needs from uv.lock (`--locked`: a lock that no longer matches
# pyproject.toml fails loudly), then runs without syncing again.
SYNC := $(UV) sync --locked --inexact
RUN := $(UV) run --locked --no-sync
WORKER_ARGS ?= --loglevel INFO
export PYTHONUNBUFFERED := 1
# The Node major frontend/package.json's engines ask for. `make node` installs it from the npm
# registry into var/node when the machine's node is older; every target finds it there first.
NODE_MAJOR := 24
# With the npm that Node 24 comes with: a distribution's older npm may not run on it.
NPM_MAJOR := 11
NODE_DIR := $(CURDIR)/var/node
export PATH := $(NODE_DIR)/node_modules/.bin:$(PATH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: uv
uv:
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv

.PHONY: install
install: uv ## Install what runs: the app, the example site's client, the embedded Redis fallback
	$(SYNC) --no-default-groups --extra client --group embedded-redis

.PHONY: install-dev
install-dev: uv ## Install everything: the test, lint, type-check and benchmark tools too
	$(SYNC) --all-groups --all-extras

.PHONY: run
run: install web ## Run Redis (if none answers at REDIS_URL), a worker, the API and the web app until Ctrl-C
	$(RUN) python -m taskstream.launcher

.PHONY: node
node: ## Install the Node that frontend/package.json asks for into var/node, if the machine's is older
	@if [ "$$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt $(NODE_MAJOR) ]; then \
		arch=$$(uname -m | sed 's/^x86_64$$/x64/; s/^aarch64$$/arm64/'); \
		npm install --prefix $(NODE_DIR) --no-save --no-package-lock --no-audit --no-fund \
			node-linux-$$arch@$(NODE_MAJOR) npm@$(NPM_MAJOR); \
	fi
	@echo "node $$(node --version) at $$(command -v node)"

frontend/node_modules/.installed: frontend/package-lock.json | node
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

.PHONY: secrets
secrets: ## Make docker-compose.yml's secrets in ./secrets/ (random; a file that exists is kept)
	sh docker/make-secrets.sh secrets

.PHONY: web
web: frontend/node_modules/.installed ## Build the web app into frontend/dist
	cd frontend && npm run build

.PHONY: types
types: install frontend/node_modules/.installed ## Regenerate the JS client's REST types (frontend/client/types/api.d.ts) from the API's OpenAPI description
	set -o pipefail; $(RUN) python -c 'import json; from taskstream.api.main import create_app; from taskstream.settings import Settings; print(json.dumps(create_app(Settings()).openapi()))' \
		| (cd frontend && npm run --silent api-types -- -o client/types/api.d.ts)

.PHONY: api
api: install ## Run one API process in the foreground (API_HOST, API_PORT, REDIS_URL)
	$(RUN) python -m taskstream.api

.PHONY: worker
worker: install ## Run one Celery worker in the foreground (REDIS_URL; WORKER_ARGS for celery)
	$(RUN) celery -A taskstream.worker.app worker $(WORKER_ARGS)

.PHONY: bench
bench: install-dev ## Benchmarks against the designs taskstream replaces; rewrites docs/benchmarks.md (~20 min)
	$(RUN) python -m bench

.PHONY: bench-quick
bench-quick: install-dev ## The benchmarks at small scale (~2 min, without the hiredis comparison); fails if an event is lost or duplicated
	$(RUN) python -m bench --quick --skip hiredis

# The lowest version of every direct dependency that pyproject.toml admits (uv's lowest-direct
# resolution), in an environment of its own: what keeps the declared lower bounds true.
LOWEST_ENV ?= .venv-lowest
# (The committed client types are generated with the locked versions: that check is make test's.)
LOWEST_TESTS ?= tests/events tests/kinds tests/worker tests/api tests/client tests/test_broker.py \
	tests/test_tracing.py \
	--ignore=tests/api/test_openapi_types.py

.PHONY: test-lowest
test-lowest: uv ## The tests that need no browser, on the lowest versions of the dependencies the bounds admit
	$(UV) venv --quiet --allow-existing --python 3.11 $(LOWEST_ENV)
	$(UV) pip compile pyproject.toml --group dev --all-extras --resolution lowest-direct \
		--python 3.11 --quiet -o $(LOWEST_ENV)/requirements.txt
	VIRTUAL_ENV=$(LOWEST_ENV) $(UV) pip sync --quiet $(LOWEST_ENV)/requirements.txt
	VIRTUAL_ENV=$(LOWEST_ENV) $(UV) pip install --quiet --no-deps -e .
	$(LOWEST_ENV)/bin/python -m pytest $(LOWEST_TESTS)

.PHONY: screenshot
screenshot: install-dev web ## Retake docs/screenshot.png, the README's picture of the page (a browser test)
	UPDATE_SCREENSHOT=1 $(RUN) pytest tests/e2e/test_page.py

.PHONY: lint
lint: install-dev ## ruff: lint and formatting
	$(RUN) ruff check .
	$(RUN) ruff format --check .

.PHONY: typecheck
typecheck: install-dev ## mypy --strict on the backend and the tests
	$(RUN) mypy

.PHONY: test
test: install-dev web lint typecheck ## Lint, type-check, run every test and the quick benchmarks (needs redis-server, chromium)
	cd frontend && npm test
	$(RUN) pytest
	$(MAKE) --no-print-directory bench-quick
