# The README's two commands:
#   make demo   the main job on the embedded lab (installs and starts everything it needs)
#   make test   install, start the lab, lint + type checks + every test, stop the lab
# .ci/run calls `make test`.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAB_ROOT ?= $(CURDIR)/.lab
# Server virtualenvs hold no data: the test and demo labs share them.
export FAILOVER_LAB_CACHE ?= $(LAB_ROOT)/cache
CHECKED := failover providers localstack playbooks tests bench setup.py

.PHONY: install lint typecheck test reliability demo lab-up lab-down bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "failover needs Python >= 3.11: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $@

lint: install
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/ruff format --check $(CHECKED)

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	@export FAILOVER_LAB_DIR=$(LAB_ROOT)/test; \
	trap '$(BIN)/failover lab down' EXIT; \
	$(BIN)/failover lab up && $(BIN)/pytest $(PYTEST_ARGS)

# The reliability suite's larger profile (on demand; the test command runs the pull-request profile).
# Figures land in .lab/reliability/large.json; the tables in RELIABILITY.md are rewritten from them.
reliability: install
	@export FAILOVER_LAB_DIR=$(LAB_ROOT)/reliability FAILOVER_RELIABILITY=large; \
	trap '$(BIN)/failover lab down' EXIT; \
	$(BIN)/failover lab up && $(BIN)/pytest tests/reliability $(PYTEST_ARGS) && \
	$(BIN)/python -m tests.reliability.figures --write RELIABILITY.md

# Every demo starts from a new lab directory (the servers' installs stay cached in .lab/cache): an
# evacuation that already happened, with its instances stopped by `lab down`, cannot be shown again.
demo: install
	@FAILOVER_LAB_DIR=$(LAB_ROOT)/demo $(BIN)/failover lab down >/dev/null 2>&1 || true
	@rm -rf $(LAB_ROOT)/demo
	@FAILOVER_LAB_DIR=$(LAB_ROOT)/demo FAILOVER=$(BIN)/failover DEMO_COMPUTE=$(COMPUTE) bash localstack/demo.sh

lab-up: install
	FAILOVER_LAB_DIR=$(LAB_ROOT)/demo $(BIN)/failover lab up

lab-down: install
	FAILOVER_LAB_DIR=$(LAB_ROOT)/demo $(BIN)/failover lab down

clean:
	-FAILOVER_LAB_DIR=$(LAB_ROOT)/test $(BIN)/failover lab down
	-FAILOVER_LAB_DIR=$(LAB_ROOT)/demo $(BIN)/failover lab down
	-FAILOVER_LAB_DIR=$(LAB_ROOT)/reliability $(BIN)/failover lab down
	rm -rf $(VENV) $(LAB_ROOT) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
