# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install

$(STAMP): requirements.txt requirements-nodeps.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; run: make PYTHON=python3 ..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# tensorflow-cpu and tensorflow share their files: a venv made with the full build drops it first
	$(PY) -m pip show --quiet tensorflow >/dev/null 2>&1 && $(PY) -m pip uninstall --quiet --yes tensorflow || true
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/streamlit run app.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# pytest exits 5 when it collects no tests: that is a failure here, as is any other non-zero status.
test: lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/latency.py
	$(PY) bench/train_time.py
	$(PY) bench/accuracy.py
