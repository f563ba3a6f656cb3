# The two newcomer commands: `make demo` and `make test` (README). Each creates
# .venv when needed and installs the project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean browser java

# The report tests drive a real headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the report tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

# tests/test_spark.py builds with `--engine spark`: Spark needs a Java runtime (17 or newer).
# `make demo` never needs it.
java:
	@command -v java >/dev/null 2>&1 || [ -x "$$JAVA_HOME/bin/java" ] || { \
		echo "installing Debian's headless Java for the Spark engine's tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq default-jre-headless >/dev/null; }

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/convo demo --dir convo-demo

# The tests also need the spark extra (pyspark); the demo's install stays without it.
TEST_STAMP := $(VENV)/.installed-test

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,spark]'
	touch $(TEST_STAMP)

# Two workers (pytest-xdist), a test module to a worker, the longest first (tests/conftest.py).
test: $(TEST_STAMP) browser java
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder

# Issue 6's benchmark rows and the results table of bench/README.md (1M, 10M and 100M
# messages, the incremental and baseline rows: hours, tens of GB; not part of test).
# bench/windows.py and bench/billing.py still run on their own (bench/README.md).
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) convo-demo .pytest_cache
