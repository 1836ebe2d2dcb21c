# earlyhelp: `make run` and `make test` on a fresh machine; everything else is a detail.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test install install-dev bench bench-pages bench-reports screenshots clean

# Debian packages, installed when missing (needs root; elsewhere install them yourself):
# fonts-dejavu-core for Cyrillic in the feedback PDF, chromium for the browser tests.
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

# Runtime dependencies, exactly as locked, plus the project itself (editable).
$(VENV)/.installed: requirements.lock pyproject.toml
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || \
		(apt-get update -qq && $(APT_INSTALL) fonts-dejavu-core)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.lock
	command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && $(APT_INSTALL) chromium)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Embedded default: SQLite in ./var, demo data, API on http://127.0.0.1:8000 (docs at /docs).
run: install
	$(BIN)/earlyhelp demo
	$(BIN)/earlyhelp serve

# Two pytest workers (the CI machine has two cores); a file's tests stay on one worker, so its
# module fixtures (a browser, a world) are built once. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

bench: install-dev
	$(BIN)/python bench/transitions.py

# Server time of every staff page on 100 000 cases, SQLite and PostgreSQL (seeded data cached in var/bench/).
bench-pages: install-dev
	$(BIN)/python bench/pages.py

# The yearly form 1-РП over 100 000 journeys and the registries' search, SQLite and PostgreSQL (cached in var/bench/).
bench-reports: install-dev
	$(BIN)/python bench/reports.py

# PNGs of every staff page at 1366x768 and 820x1180 in docs/screenshots/ (demo data, Debian's Chromium).
screenshots: install-dev
	$(BIN)/python bench/screenshots.py

clean:
	rm -rf $(VENV) var build *.egg-info
