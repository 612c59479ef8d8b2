# The two README commands: `make demo` and `make test`. Both create .venv and install
# privaudit first; only Python 3.11, pip and make are needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test bench lint install clean chromium

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; run with PYTHON=python3"; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,dev,flower]"
	@touch $(STAMP)

install: $(STAMP)

DEMO_KEY := runs/keys/privaudit-ed25519.pem

demo: $(STAMP) chromium
	@test -f $(DEMO_KEY) || $(BIN)/privaudit keygen --out runs/keys
	$(BIN)/privaudit demo --out runs/demo --sign $(DEMO_KEY)
	$(BIN)/privaudit verify runs/demo --public-key runs/keys/privaudit-ed25519.pub.pem

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

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
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
