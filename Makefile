# Two commands do all set-up: `make demo` and `make test`. Each creates .venv if missing and installs into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-output
DEMO_FAULT ?= libvirt_domain_failure
DEMO_ISSUE ?= instances fail to boot on compute-2
DASHBOARD_PORT ?= 8501

export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test install bench eval clean serve dashboard

$(STAMP): pyproject.toml openstack_rca/parse/_speedups.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "openstack-rca needs Python 3.11 (set PYTHON=python3.11)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ml,train,rag,serve,ui]'
	# Drain3, the reference parser the benchmarks compare against, pins cachetools 4.2.1, which mlflow cannot
	# live with; it runs fine on the newer one, so it is installed without its pins.
	$(PY) -m pip install --quiet --no-deps drain3==0.9.11 jsonpickle==1.5.1
	touch $(STAMP)

install: $(STAMP)

# The demo keeps its data home inside demo-output so it never touches ~/.openstack-rca.
demo: export RCA_HOME := $(CURDIR)/$(DEMO_DIR)/home
demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	$(VENV)/bin/rca simulate --fault none --out $(DEMO_DIR)/normal --lines 12000 --seed 1
	$(VENV)/bin/rca simulate --fault $(DEMO_FAULT) --out $(DEMO_DIR)/logs --lines 6000 --seed 7
	$(VENV)/bin/rca parse $(DEMO_DIR)/logs
	$(VENV)/bin/rca train --logs $(DEMO_DIR)/normal
	$(VENV)/bin/rca ingest $(DEMO_DIR)/logs --corpus demo
	$(VENV)/bin/rca analyze --corpus demo --issue "$(DEMO_ISSUE)"

# Serve the demo's model over HTTP (3000) and gRPC (8001): `make demo` first if there is no model yet.
serve: export RCA_HOME := $(CURDIR)/$(DEMO_DIR)/home
serve: export MALLOC_ARENA_MAX := 2
serve: export ARROW_DEFAULT_MEMORY_POOL := system
# The demo serves on loopback without a token, on purpose (the service refuses to start open otherwise).
serve: export RCA_ALLOW_ANONYMOUS := 1
serve: $(STAMP)
	@test -d $(DEMO_DIR)/home/models || $(MAKE) demo
	$(VENV)/bin/bentoml serve --host 127.0.0.1 --port 3000

# The Streamlit RCA console on the demo's model and corpus (http://localhost:8501); `make demo` first if needed.
# With RCA_API_URL (and RCA_API_TOKEN) set it talks to that service instead of running the engine itself.
dashboard: export RCA_HOME := $(CURDIR)/$(DEMO_DIR)/home
dashboard: $(STAMP)
	@test -n "$$RCA_API_URL" || test -d $(DEMO_DIR)/home/models || $(MAKE) demo
	$(VENV)/bin/streamlit run dashboard/app.py --server.headless true --server.port $(DASHBOARD_PORT) \
		--browser.gatherUsageStats false

test: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) || echo "chromium unavailable: the browser test will skip"
	$(PY) -m pytest

# Whole processes first (what a user waits for: CLI, service cold start, image size), then the in-process figures.
bench: $(STAMP)
	$(PY) benchmarks/cli_latency.py
	$(PY) benchmarks/service_latency.py
	$(PY) benchmarks/image_size.py
	$(PY) benchmarks/parse_accuracy.py
	$(PY) benchmarks/parse_throughput.py
	$(PY) benchmarks/score_throughput.py
	$(PY) benchmarks/evaluation.py
	$(PY) benchmarks/analyze_latency.py
	$(PY) benchmarks/real_faults.py

# Diagnosis on real OpenStack failures (../shared/data/fault-injection) against three grep baselines; both
# models, fast and hybrid. About 5 minutes the first time (it trains the two models), 2 after.
eval: $(STAMP)
	$(PY) benchmarks/real_faults.py --json real-faults.json

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
