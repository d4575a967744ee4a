# One task runner. Every target creates .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test

.PHONY: demo test lint typecheck bench fuzz clean venv system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/spinepki demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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

test: system-deps lint typecheck
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks $(BENCH_ARGS)

# Long fuzz campaigns (tests/fuzz, docs/security.md "Fuzzing"): hypothesis then atheris,
# FUZZ_SECONDS per target per engine (7 targets x 2 engines x 60 s = about 14 minutes).
# atheris is optional: installed here when a wheel exists, otherwise hypothesis only.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet atheris || echo "fuzz: atheris does not install here; hypothesis campaigns only"
	$(BIN)/python -m tests.fuzz --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .coverage .mypy_cache .ruff_cache .pytest_cache
