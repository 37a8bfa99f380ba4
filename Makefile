# chatmesh developer entry points. `make up` and `make test` are the two
# commands of the README; everything else is what they are made of.

VENV   := .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: up test install backing tools down check lint proto web

## Install dependencies, start the backing stores, then every service, two
## gateways and Envoy; prints where to connect. Ctrl-C stops the services.
up: backing web
	$(PY) -m chatmesh.devcluster up

## Everything CI checks: contracts, generated code, lint, types, the test suite.
test: backing tools check web
	$(PY) -m pytest

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

backing: install
	deploy/local/backing.sh up

tools: install
	deploy/local/tools.sh

down:
	deploy/local/backing.sh down

check: install
	$(VENV)/bin/buf lint
	scripts/gen-proto --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

proto: install
	scripts/gen-proto

## The web chat page (web/dist), served by `make up` at /app/ on the edge.
web:
	web/build
