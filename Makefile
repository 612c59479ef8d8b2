# The two README commands: `make demo` and `make test`. Both create .venv and install
# privaudit first; only Python 3.11, pip and make are needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# constraints.txt is the lock: every package of the install, transitive ones included, pinned
# to one release (`make lock` regenerates it). pip itself is pinned here; torch stays at
# 2.13.0, the CPU build these machines carry.
PIP_VERSION := 26.3
PIP_TOOLS_VERSION := 7.6.2
TORCH_VERSION := 2.13.0
LOCK_VENV := .venv-lock
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test bench lint install clean chromium lock

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; run with PYTHON=python3"; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,dev,flower]"
	@touch $(STAMP)

install: $(STAMP)

# Re-resolve every dependency to its newest release allowed by pyproject.toml (torch held at
# $(TORCH_VERSION)) and rewrite constraints.txt; then run `make test` and commit both.
# `make lock UPGRADE="--upgrade-package NAME"` moves one package only.
UPGRADE ?= --upgrade
lock:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; run with PYTHON=python3"; exit 2; }
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet "pip==$(PIP_VERSION)" "pip-tools==$(PIP_TOOLS_VERSION)"
	echo "torch==$(TORCH_VERSION)" > $(LOCK_VENV)/torch.txt
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet $(UPGRADE) \
	  --extra test --extra dev --extra flower --strip-extras --no-emit-index-url \
	  --no-emit-find-links --no-emit-trusted-host -c $(LOCK_VENV)/torch.txt \
	  -o constraints.txt pyproject.toml

DEMO_KEY := runs/keys/privaudit-ed25519.pem

demo: $(STAMP) chromium
	@test -f $(DEMO_KEY) || $(BIN)/privaudit keygen --out runs/keys
	@# a run writes only into a new or empty directory: each `make demo` starts afresh
	rm -rf runs/demo
	$(BIN)/privaudit demo --out runs/demo --sign $(DEMO_KEY)
	$(BIN)/privaudit verify runs/demo --public-key runs/keys/privaudit-ed25519.pub.pem

# The whole check: lint (ruff), types (mypy), the test suite, then every module's doctests.
# The suite runs on TEST_WORKERS processes (pytest-xdist), one torch thread each, a test file
# per worker so module fixtures are built once: 1.5x faster than one process on 2 cores.
TEST_WORKERS ?= 2
test: $(STAMP) chromium lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile
	$(BIN)/python -m pytest -q -p no:cacheprovider --doctest-modules privaudit

# Headless Chromium renders report.pdf and runs the report's screenshot test. Installed from
# Debian only when missing and running as root; never fails the build (those tests then skip).
chromium:
	-@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] \
	  && { apt-get install -y -qq chromium >/dev/null 2>&1 \
	       || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; } \
	  || echo "make: headless Chromium not installed; PDF and screenshot tests will be skipped"; }

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks -q -s --benchmark-only -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check privaudit tests benchmarks
	$(BIN)/mypy privaudit

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache $(LOCK_VENV)
