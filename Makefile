# chatmesh developer entry points. `make up` and `make test` are the two
# commands of the README; everything else is what they are made of.

VENV   := .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: up test test-multinode install backing tools down check lint proto web

## Install dependencies, start the backing stores, then every service, two
## gateways and Envoy; prints where to connect. Ctrl-C stops the services.
up: backing web
	$(PY) -m chatmesh.devcluster up

## Everything CI checks: contracts, generated code, lint, types, the test
## suite on single-node stores, then its multi-node part.
test: backing tools check web
	$(PY) -m pytest
	$(MAKE) test-multinode

# On the multi-node stores (a 3-node Cassandra ring at LOCAL_QUORUM, a Redis
# Cluster, 3 Kafka brokers): the tests marked multinode (node failures, bad
# cluster states) and the suite's parts whose store calls change with the
# shape: every store-level test, and end to end the send path, groups, sync,
# receipts, presence and revocation. Left to the single-node run: what
# kills or replaces the stores themselves (they bring their own Redis and
# Kafka), TLS to the stores (certificates for the single node), the
# Cassandra trickle benchmark's smoke test (it reads the single node's CPU),
# and the clients, edge and gateway tests, whose store calls are those above.
MULTINODE_TESTS := tests/multinode tests/integration \
	tests/e2e/test_lifecycle.py tests/e2e/test_groups.py tests/e2e/test_group_fanout.py \
	tests/e2e/test_sync_and_receipts.py tests/e2e/test_sync_held.py tests/e2e/test_presence.py \
	tests/e2e/test_revocation.py tests/e2e/test_first_message.py
MULTINODE_EXCLUDED := $(addprefix --ignore=tests/integration/,test_cassandra_tls.py \
	test_redis_tls.py test_kafka_tls.py test_postgres_tls.py test_store_failures.py \
	test_bench_cassandra_trickle.py)

test-multinode: install
	deploy/local/backing.sh up --multinode
	set -a && . .local/multinode/env && set +a && \
		$(PY) -m pytest -m "" $(MULTINODE_TESTS) $(MULTINODE_EXCLUDED)

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
	deploy/local/backing.sh down --multinode

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
