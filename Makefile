# Continuum Hub: the two commands of the README, and a few for developers.
#   make demo   – install what is needed, then run the local federation (Ctrl-C stops it)
#   make test   – install what is needed, then lint and run the whole test suite
VENV ?= /opt/continuum-hub/venv
PYTEST_ARGS ?=
export VENV

.PHONY: demo test setup setup-test lint format unit

setup:
	bash images/setup.sh

setup-test:
	bash images/setup.sh --test

demo: setup
	$(VENV)/bin/python -m continuum_federation demo

lint: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	npm run --silent lint

format: setup-test
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	npm run --silent lint:fix

unit: setup-test
	$(VENV)/bin/python -m pytest tests/unit $(PYTEST_ARGS)

# pytest killed by a signal (exit status > 128) has no report of its own: say which test ran
test: lint
	npm test --silent
	@current=$$(mktemp); \
	CONTINUUM_TEST_CURRENT=$$current $(VENV)/bin/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -gt 128 ]; then \
	  echo "pytest died of signal $$((rc - 128)) while running: $$(cat $$current)"; fi; \
	rm -f $$current; exit $$rc
