# The two commands of the README. Everything else is a detail of these two.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/carclinic
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python tools/spectral/node_modules/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	@# The browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } || \
		{ echo "Chromium is missing: apt-get install chromium chromium-driver" >&2; exit 1; }

# Spectral lints the served OpenAPI document in the tests; pinned by tools/spectral/package-lock.json.
tools/spectral/node_modules/.installed: tools/spectral/package.json tools/spectral/package-lock.json
	cd tools/spectral && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed

run: install
	bin/run

test: install-test
	@# The layers of pyproject.toml's [tool.importlinter]: an import that points up fails before any test runs.
	$(BIN)/lint-imports --no-cache
	@# Lint and format ([tool.ruff] in pyproject.toml): zero findings, or the tests do not start.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) DJANGO_DEBUG=1 \
		$(BIN)/python -m pytest $(PYTEST_ARGS)
