# Two commands: `make run` starts Stepmail on embedded defaults; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint layers typecheck pytest signup check bench screenshots env-example clean messages

$(STAMP): pyproject.toml setup.py clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e clients/python
	touch $(STAMP)

# `make run` and `make signup` are the trial: development mode, whose defaults the banner lists.
run signup: export STEPMAIL_ENVIRONMENT ?= development

run: $(STAMP)
	$(BIN)/stepmail run

test: lint layers typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The package layering (pyproject.toml [tool.importlinter]; docs/architecture.md, "Layers").
layers: $(STAMP)
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy orchestrator workers tests bench scripts clients/python/stepmail_client

pytest: $(STAMP)
	$(BIN)/pytest

check: $(STAMP)
	$(BIN)/stepmail check

# Post a signed sample signup to a running `make run` (see README, "Try it").
signup: $(STAMP)
	$(BIN)/python -m orchestrator.tools.sample_signup

# .env.example is written from the settings' descriptions (a test checks it is current).
env-example: $(STAMP)
	$(BIN)/python -m orchestrator.tools.env_example > .env.example

bench: $(STAMP)
	$(BIN)/python bench/end_to_end.py

# The README's picture of the console's overview (headless chromium; no test depends on it).
screenshots: $(STAMP)
	$(BIN)/python scripts/console_screenshot.py

# Re-extract the console's strings into its template and merge them into both catalogs; then
# translate the new entries of orchestrator/console/locale/ja (tests/console/test_i18n.py checks).
LOCALE := orchestrator/console/locale
messages: $(STAMP)
	$(BIN)/pybabel extract -F $(LOCALE)/babel.cfg -k N_ --no-location --sort-output \
		--omit-header --project=Stepmail -o $(LOCALE)/console.pot .
	$(BIN)/pybabel update -D console -i $(LOCALE)/console.pot -d $(LOCALE) -N -w 100 \
		--ignore-obsolete --ignore-pot-creation-date

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
