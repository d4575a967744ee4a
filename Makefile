# One task runner. Every target creates .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test
# The lock: exact versions of everything the targets below install (pip and the build
# backend included), for Python 3.11 to 3.13. `make lock` refreshes it; see
# docs/decisions/0007-locked-dev-environment.md.
LOCK   := requirements/constraints.txt
# The dependency floors of pyproject.toml, resolved (`make test-oldest`).
OLDEST := requirements/oldest.txt
INSTALL = -m pip install --quiet --constraint $(LOCK) --build-constraint $(LOCK)

.PHONY: demo test lint typecheck bench fuzz clean venv system-deps lock test-latest test-oldest

# pip first, from the lock: --build-constraint needs pip 25.3 or later.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) --upgrade pip

# Reinstall when the project metadata or the lock changes.
$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python $(INSTALL) -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/spinepki demo --via-ssp

# lint-imports checks the import contract in pyproject.toml (docs/architecture.md).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# coverage run (not pytest-cov): spinepki's own pytest plugin is imported when pytest
# starts, before pytest-cov could begin measuring, which would miss module-level code.
# System packages the integration tests run for real: Debian's nginx (tests/integration/
# test_nginx.py), and apache2 + haproxy to syntax-check the exported configurations.
# Installed when missing and we are root with apt (CI is); otherwise those tests skip and
# say why.
SYSTEM_PACKAGES := nginx apache2 haproxy
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  command -v $$p >/dev/null 2>&1 || [ -x /usr/sbin/$$p ] || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "system-deps: missing$$missing and cannot install (not root, or no apt-get); their tests will be skipped"; \
	  fi; \
	fi

# The whole suite on the default interpreter (with coverage), then the tests not marked
# slow on every other supported Python found (pyenv's or pythonX.Y on PATH), each in its
# own .venv-X.Y from the lock. OTHER_PYTHONS="3.13" narrows that; OTHER_PYTHONS=none skips.
OTHER_PYTHONS ?= 3.11 3.12 3.13
test: system-deps lint typecheck
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report
	$(BIN)/python tools/other_pythons.py --lock $(LOCK) --only $(filter-out none,$(OTHER_PYTHONS))

# Refresh the lock (newest releases) and the floors file, with uv (pinned in the lock).
lock: $(BIN)/python
	$(BIN)/python $(INSTALL) uv
	$(BIN)/uv pip compile pyproject.toml requirements/tools.in --all-extras --universal \
	  --python-version 3.11 --upgrade --quiet --custom-compile-command "make lock" -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
	  --resolution lowest-direct --upgrade --quiet --custom-compile-command "make lock" -o $(OLDEST)

# The suite against today's newest releases, ignoring the lock: the next deprecation or
# break shows up here before users see it. Always a fresh .venv-latest.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	.venv-latest/bin/python -m pip install --quiet --upgrade -e '.[test]'
	.venv-latest/bin/python -m pip list --format=freeze | grep -iE '^(cryptography|requests|click|anycorn|gunicorn)='
	.venv-latest/bin/python -W error -c 'import spinepki, spinepki_pytest, spinepki_cli.main'
	.venv-latest/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The suite with every dependency at the lowest version pyproject.toml allows (the
# floors are tested, or raised to what is). Always a fresh .venv-oldest.
test-oldest:
	rm -rf .venv-oldest
	$(PYTHON) -m venv .venv-oldest
	.venv-oldest/bin/python -m pip install --quiet --constraint $(LOCK) --upgrade pip
	.venv-oldest/bin/python -m pip install --quiet --constraint $(OLDEST) --build-constraint $(LOCK) -e '.[test]'
	.venv-oldest/bin/python -m pip list --format=freeze | grep -iE '^(cryptography|requests|click|anycorn|gunicorn)='
	.venv-oldest/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks $(BENCH_ARGS)

# Long fuzz campaigns (tests/fuzz, docs/security.md "Fuzzing"): hypothesis then atheris,
# FUZZ_SECONDS per target per engine (7 targets x 2 engines x 60 s = about 14 minutes).
# atheris is optional: installed here when a wheel exists, otherwise hypothesis only.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/python $(INSTALL) atheris || echo "fuzz: atheris does not install here; hypothesis campaigns only"
	$(BIN)/python -m tests.fuzz --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) .venv-* build dist *.egg-info .coverage .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
