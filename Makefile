# Two entry points for a fresh clone: `make demo` and `make test`.
# Each bootstraps .venv on first use: `make demo` installs what the demo needs, `make test` adds the
# test extra (pytest, Ray, ONNX, Playwright, ...). PyTorch is pinned to a CPU-friendly release;
# override it with e.g. `make demo TORCH="torch==2.10.0"` (2.10 is the floor).

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin
DEMO_STAMP = $(VENV)/.installed-demo
TEST_STAMP = $(VENV)/.installed-test

.PHONY: demo test bench clean

# The torch requirement goes along with each install, so no extra's dependency can move it.
# (The distribution was called `overfit` before it became `overfit-lab`; an older .venv drops it.)
$(DEMO_STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	-@$(BIN)/python -m pip uninstall --quiet --yes overfit 2>/dev/null
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e .
	touch $(DEMO_STAMP)

$(TEST_STAMP): $(DEMO_STAMP)
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e ".[test]"
	touch $(TEST_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/overfit train

# The lab's browser test needs Debian's chromium; where it cannot be installed (no root, not
# Debian) that one test is skipped with its reason, and the rest still runs.
test: $(TEST_STAMP)
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) \
		|| echo "chromium could not be installed: tests/test_web_browser.py will be skipped"
	$(BIN)/python -m pytest -q

bench: $(TEST_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
