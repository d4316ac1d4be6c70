# The README's commands. `make test` works on a fresh Debian machine as root: it installs and
# starts Docker, initialises Swarm, installs the project in .venv, builds the test image and
# runs lint plus the whole suite (unit and integration).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test unit lint docker venv test-image clean

test: docker venv test-image lint
	$(BIN)/python -m pytest

unit: venv
	$(BIN)/python -m pytest tests/unit

lint: venv
	$(BIN)/flake8 app tests bench wsgi.py gunicorn.conf.py

docker:
	bash scripts/setup-docker.sh

venv: $(BIN)/.installed

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV) || { apt-get update -q && apt-get install -y -q python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

test-image: docker
	bash images/watchdog/build.sh

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
