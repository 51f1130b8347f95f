# Two entry points for a fresh clone: `make demo` and `make test`.
# Each bootstraps .venv on first use. PyTorch is pinned to a CPU-friendly
# release; override it with e.g. `make demo TORCH="torch==2.10.0"` (2.10 is the floor).

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/overfit train

# The lab's browser test needs Debian's chromium; where it cannot be installed (no root, not
# Debian) that one test is skipped with its reason, and the rest still runs.
test: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) \
		|| echo "chromium could not be installed: tests/test_web_browser.py will be skipped"
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
