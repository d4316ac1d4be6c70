# The README's commands, each working on a fresh Debian machine as root.
# `make up` starts the gateway behind nginx (scripts/up.sh). `make test` installs and starts
# Docker, initialises Swarm, installs the project in .venv, builds the test image and runs lint
# plus the whole suite (unit, integration and end-to-end).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test test-faults unit mutation lint docker tools venv test-image up down cluster cluster-down clean

# Leaves out the test that stops the Docker daemon, and with it every container on the machine,
# unless CI=true (tests/conftest.py); `make test-faults` runs it on its own.
# The real OpenFaaS binaries (faas-cli, fwatchdog, of-watchdog, faas-swarm) are read from
# OPENFAAS_BIN_DIR, by default ../shared/bin beside the repository; set it in the environment or
# as `make test OPENFAAS_BIN_DIR=/path` (make passes it on). docs/testing.md says where to get them.
test: docker tools venv test-image lint
	$(BIN)/python -m pytest

test-faults: docker venv test-image
	$(BIN)/python -m pytest -m docker_restart

# Programs the tests start themselves: a redis-server for the Redis queue backend, and Debian's
# chromium, which Playwright drives for the dashboard's browser tests (nothing is downloaded).
# Every package this repository installs goes through scripts/apt.sh: it waits (bounded) for
# another apt run's lock and keeps apt's output in a log shown only when the install fails.
tools:
	command -v redis-server >/dev/null || bash scripts/apt.sh redis-server
	[ -x /usr/bin/chromium ] || bash scripts/apt.sh chromium

unit: tools venv
	$(BIN)/python -m pytest tests/unit

# Mutation testing of the core modules ([mutmut] in setup.cfg) against the unit tests; no Docker.
# Starts from a fresh copy in ./mutants, so the score is that of the code and tests as they are;
# pytest's temporary folders stay in it too. MUTANTS narrows the run by mutant name, e.g.
# `make mutation MUTANTS='app.domain.scaling.* app.runtime.swarm.specs.*'`. docs/mutation.md has the scores.
MUTANTS ?=
mutation: tools venv
	rm -rf mutants && mkdir -p mutants/tmp
	TMPDIR=$(CURDIR)/mutants/tmp nice -n 10 $(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/python scripts/mutation_score.py

lint: venv
	$(BIN)/flake8 app tests bench harness wsgi.py gunicorn.conf.py

docker:
	bash scripts/setup-docker.sh

venv: $(BIN)/.installed

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV) 2>/dev/null || { bash scripts/apt.sh python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

test-image: docker
	bash images/watchdog/build.sh

up:
	bash scripts/up.sh

# Stops the stack; the credentials and the functions network stay.
ENV_FILE ?= .env
# Swarm frees a removed container's attachment to the edge overlay a moment later, so removing
# the network right after the containers may fail ("in use by task"): a few tries, a second apart.
down:
	[ ! -f $(ENV_FILE) ] || for try in 1 2 3 4 5 6 7 8 9 10; do \
	  docker-compose --env-file $(ENV_FILE) \
	    --project-name "$$(sed -n 's/^COMPOSE_PROJECT_NAME=//p' $(ENV_FILE))" down --remove-orphans && exit 0; \
	  sleep 1; \
	done; exit 1

# A real 3-node Swarm on this machine (Docker-in-Docker nodes, a registry, the stack deployed
# across them with docker stack deploy): docs/cluster.md. cluster-down removes all of it.
cluster:
	bash scripts/cluster.sh up

cluster-down:
	bash scripts/cluster.sh down

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis mutants
