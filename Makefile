# Operator interface: `make demo` and `make test` set everything up on a fresh machine.
# Needs only Python 3.11 and a Java 17 JDK; everything else comes from PyPI and Maven Central.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
JVM_PACKAGES := .cache/jvm-packages.ok
PYTEST_ARGS ?=
# make bench SIZES=2.5M,5M,10M BENCH_ARGS="--hourly-fraction 0.01 --out benchmarks/results/latest.json"
SIZES ?=
BENCH_ARGS ?=

.PHONY: setup demo test test-slow test-all scenarios bench airflow serve cluster-up cluster-down cluster-status constraints clean

setup: $(INSTALLED) $(JVM_PACKAGES)

$(INSTALLED): requirements.txt constraints.txt
	@command -v java >/dev/null && command -v javac >/dev/null || { echo "A Java 17 JDK is needed: java, and javac for the SQL endpoint (e.g. apt-get install openjdk-17-jdk-headless)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	@touch $@

# Delta's JVM package (and its dependencies) are fetched once into .cache/ivy by a first Spark start.
$(JVM_PACKAGES): $(INSTALLED) conf/base.yaml
	$(PY) -m jobs setup
	@mkdir -p $(dir $@) && touch $@

demo: setup
	$(PY) -m jobs demo

# The suite CI runs (.ci/run). The end-to-end stories marked `slow` (Airflow's `dags test` runs, the
# erasure audit) take most of an hour more on two cores: `make test-slow` runs them, `make test-all` both.
# TEST_WORKERS test processes (pytest-xdist), each with its own Spark session, take whole test files,
# the longest first (tests/conftest.py: LONGEST_FIRST; xdist's own reordering is turned off for it);
# TEST_WORKERS=0 runs everything in one process (easier to debug, and to read its output).
TEST_WORKERS ?= 2
PYTEST_WORKERS = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)
test: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -m slow $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The failure scenarios of issue #12 (tests/scenarios/, also part of `make test`): runs them, then prints
# the table of what each one injected and what came of it (README "What happens when…").
SCENARIO_REPORT ?= .cache/scenarios.jsonl
scenarios: setup
	@rm -f $(SCENARIO_REPORT)
	LAKEHOUSE_SCENARIO_REPORT=$(SCENARIO_REPORT) $(PY) -m pytest tests/scenarios $(PYTEST_ARGS); status=$$?; \
	$(PY) -m tests.scenarios.report $(SCENARIO_REPORT); exit $$status

# The benchmark of issue #8 (README "Benchmark"): histories of 2.5M, 5M and 10M events, a full rebuild,
# three hourly runs at each (the median reported), DuckDB's three marts; prints a table, writes
# benchmarks/results/latest.json.
# Hours on two cores: run it on a machine doing nothing else. No timings are asserted in the tests.
bench: setup
	$(PY) -m benchmarks $(if $(SIZES),--sizes $(SIZES)) $(BENCH_ARGS)

# The Airflow UI (http://localhost:8080, user admin, password printed on first start and kept in
# airflow_home/simple_auth_manager_passwords.json.generated) with the project's DAGs, SQLite under airflow_home/.
airflow: setup
	$(PY) -m jobs.airflow_env standalone

# The SQL endpoint for BI tools (python -m jobs serve; README "Connecting BI tools"). Needs a JDK (javac)
# and at least one login from `python -m jobs bi-login`. WAREHOUSE=demo/warehouse serves the demo's marts.
serve: setup
	$(PY) -m jobs serve $(if $(WAREHOUSE),--warehouse $(WAREHOUSE))

# A Spark standalone master with two workers and an S3 server (s3proxy, fetched once from Maven Central)
# on this machine, stopped by pid (python -m scale_out.local_cluster; issue #13). State and logs in
# .cache/cluster/. S3 keys from LAKEHOUSE_S3_ACCESS_KEY/LAKEHOUSE_S3_SECRET_KEY, else generated into
# .cache/cluster/s3.env. The defaults match conf/cluster.yaml; workers' UIs use CLUSTER_WEBUI_PORT + 1 and + 2.
CLUSTER_MASTER_PORT ?= 7077
CLUSTER_WEBUI_PORT ?= 8090
CLUSTER_S3_PORT ?= 9000
CLUSTER_ARGS = --master-port $(CLUSTER_MASTER_PORT) --webui-port $(CLUSTER_WEBUI_PORT) --s3-port $(CLUSTER_S3_PORT)

cluster-up: $(INSTALLED)
	$(PY) -m scale_out.local_cluster up $(CLUSTER_ARGS)

cluster-down:
	$(PY) -m scale_out.local_cluster down $(CLUSTER_ARGS)

cluster-status:
	$(PY) -m scale_out.local_cluster status $(CLUSTER_ARGS)

# Re-freeze the full dependency set after changing requirements.txt.
constraints:
	$(PY) -m pip install --quiet -r requirements.txt
	{ echo "# Full resolved set for requirements.txt (Python 3.11). Installed with -c so a fresh"; \
	  echo "# machine gets exactly the versions tested here. Regenerate: make constraints."; \
	  $(PY) -m pip freeze | grep -v '^-e'; } > constraints.txt

clean:
	rm -rf warehouse demo airflow_home .pytest_cache
