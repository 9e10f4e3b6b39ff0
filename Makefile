# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run demo test cluster-test constraints lint fmt install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/nexgate serve

# `make run` with a demo world: users who follow each other, shops, products, events,
# buy-together groups at every status and installment plans (safe to re-run).
demo: $(STAMP)
	$(VENV)/bin/nexgate seed-demo
	$(VENV)/bin/nexgate serve

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy
	$(PY) -m pytest -q --ignore=tests/cluster $(PYTEST_ARGS)

# The multi-node layout of deploy/ as processes: HAProxy, two nodes, a worker, PostgreSQL and a
# Redis of its own, through kill -9, a drain and a Redis restart (needs haproxy, redis-server).
cluster-test: $(STAMP)
	$(PY) -m pytest -q tests/cluster $(PYTEST_ARGS)

# Pin the runtime dependencies this venv passed the tests with (the Docker image uses them).
constraints: $(STAMP)
	{ sed -n 1,3p constraints.txt; $(PY) deploy/pin_constraints.py; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Stop the embedded PostgreSQL clusters (`make run`'s, the tests') before deleting their data;
# without a virtualenv, a fast shutdown signal to the postmaster.
clean:
	@for pg in var/pg .pytest-pg/pg; do \
	  if [ -x $(PY) ]; then $(PY) -m server.store.embedded stop $$pg || true; \
	  elif [ -f $$pg/postmaster.pid ]; then kill -INT $$(head -n 1 $$pg/postmaster.pid) 2>/dev/null && sleep 2; \
	  fi; \
	done; true
	rm -rf $(VENV) var .pytest-pg .pytest_cache
