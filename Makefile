# cxvalue: `make report` sets everything up and runs the demo; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup report test test-slow bench bench-run coverage mutation lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name cxvalue --display-name "cxvalue" >/dev/null
	touch $(STAMP)

report: setup
	$(BIN)/cxvalue demo --out reports/demo --runs-dir reports/runs --config data/demo.yaml  # prints where the report is

# tests/test_spark.py runs the analysis on Spark where Java is: make test installs the spark
# extra (pyspark, ~300 MB) once; make report never does. --dist loadgroup keeps the Spark tests
# on one worker, so one JVM starts.
SPARK_STAMP := $(VENV)/.installed-spark

$(SPARK_STAMP): $(STAMP)
	@if command -v java >/dev/null 2>&1 || [ -x "$$JAVA_HOME/bin/java" ]; then \
	  $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]" && touch $@; \
	else echo "No Java here: tests/test_spark.py will be skipped (Spark needs Java 17)."; fi

test: setup $(SPARK_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow"

test-slow: setup
	$(BIN)/python -m pytest -q -n 2 -m slow

bench: setup  # the history vs plain pandas, then the whole run (bench/README.md)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/e2e.py

bench-run: setup  # the whole cxvalue run on 1,000,000 customers and make report on the demo, vs one DuckDB pass
	$(BIN)/python bench/e2e.py

coverage: setup  # interval coverage on 100 small worlds, then the grid (confounding x size x spend noise; hours, resumable)
	-$(BIN)/python bench/coverage.py --worlds 100 --customers 2500
	bench/low $(BIN)/python bench/coverage_grid.py --spend-noise 0,0.5 --worlds 60,30,20

# Mutation testing of the estimator modules (not part of `make test`; hours on 2 cores, one worker,
# resumable: a second run only tests what is new or changed). MUTANTS narrows it to some modules, e.g.
# make mutation MUTANTS='cxvalue.business_case.* cxvalue.value.*'. Results and survivors: tests/MUTATION.md
MUTANTS ?=
mutation: setup
	bench/low $(BIN)/mutmut run --max-children 1 $(MUTANTS)
	$(BIN)/python bench/mutation_report.py

lock:
	rm -rf /tmp/cxvalue-lock && $(PYTHON) -m venv /tmp/cxvalue-lock
	/tmp/cxvalue-lock/bin/pip install --quiet ".[dev,spark]"
	( echo "# Pinned, resolved set for reproducible installs (pip install -c constraints.txt ...)."; \
	  echo "# Regenerate with: make lock"; \
	  /tmp/cxvalue-lock/bin/pip freeze --exclude-editable | grep -v '^cxvalue' | sort ) > constraints.txt

clean:
	rm -rf $(VENV) reports .pytest_cache
