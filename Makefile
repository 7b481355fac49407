# Serval's command interface. CI runs the same targets (.ci/run -> make test).
SHELL := /bin/bash
.DEFAULT_GOAL := help

ENV ?= dev
PY := .venv/bin/python
UV_VERSION := 0.13.8
UV := .tools/bin/uv
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1
export UV_PYTHON_DOWNLOADS := never
# The suite runs on TEST_WORKERS pytest-xdist processes, one test module (or one group of modules
# sharing a session fixture, tests/conftest.py) per worker at a time. TEST_WORKERS=0 runs it in
# this one process: make test TEST_WORKERS=0
TEST_WORKERS ?= auto
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: help setup dev test test-fast lint synth bench deploy destroy openapi events-doc layer-requirements clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --quiet --target .tools uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The web app (frontend/): its own npm packages, its API types generated from docs/openapi.json,
# and its build (frontend/dist), which the local gateway serves and CDK deploys.
FRONTEND_SRC := $(shell find frontend/src -type f ! -name api-schema.d.ts 2>/dev/null) frontend/index.html \
	frontend/vite.config.ts frontend/tsconfig.json docs/openapi.json

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

frontend/dist/index.html: frontend/node_modules/.installed $(FRONTEND_SRC)
	cd frontend && npm run --silent api-types && npm run --silent build

setup: .venv/.synced node_modules/.installed frontend/dist/index.html ## Install Python and npm dependencies, build the web app (idempotent)

dev: setup ## Run the whole platform locally on moto, seeded with demo data
	$(PY) -m infra.local

test: setup lint ## Lint, then run the whole test suite (unit, integration, infra, e2e) in parallel
	$(PYTEST)

test-fast: setup ## Unit and integration tests only
	$(PYTEST) tests/unit tests/integration

lint: setup ## ruff + mypy + import-linter's contracts (pyproject.toml), and the web app's ESLint (its types are checked by its build)
	cd frontend && npm run --silent lint
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy -p serval -p api -p ingest -p events -p chainer -p jobs -p jobs_dlq -p workflow -p starter -p webhooks -p reconciler -p infra -p bench
	PYTHONPATH=layers:functions .venv/bin/lint-imports --no-logo

synth: setup ## Synthesize the CloudFormation templates of every stack (ENV=dev|staging|prod)
	npx cdk synth --quiet -c env=$(ENV)

deploy: setup ## Deploy to AWS: make deploy ENV=dev
	npx cdk deploy -c env=$(ENV) --all --require-approval broadening

destroy: setup ## Destroy a deployment: make destroy ENV=dev
	npx cdk destroy -c env=$(ENV) --all

bench: setup ## Run the benchmarks and print their tables
	$(PY) -m bench

openapi: setup ## Print the OpenAPI document of the API
	@PYTHONPATH=layers:functions $(PY) -m api.openapi

events-doc: setup ## Regenerate docs/events.md (the domain events and their JSON Schemas)
	@PYTHONPATH=layers $(PY) -c "from serval.domain.events import schema_markdown; print(schema_markdown(), end='')" > docs/events.md

layer-requirements: $(UV) ## Regenerate layers/requirements.txt from the lock file
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project -o layers/requirements.txt

clean: ## Remove local state and build output
	rm -rf .serval cdk.out
