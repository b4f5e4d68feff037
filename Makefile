# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
# Both set up everything first (scripts/setup_env.sh is idempotent and fast on a second run).
VENV ?= .venv
export VENV

.PHONY: setup demo test test-slow bench lint clean
setup:
	@bash scripts/setup_env.sh

demo: setup
	@bash -c 'source scripts/ros_env.sh && $(VENV)/bin/vega-ros demo $(ARGS)'

test: setup
	@bash scripts/run_tests.sh

test-slow: setup
	@bash scripts/run_tests.sh -m slow

bench: setup
	@bash -c 'source scripts/ros_env.sh && for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done'

lint: setup
	@$(VENV)/bin/ruff check vega_ros distill tests bench

clean:
	rm -rf $(VENV) demo_out .pytest_cache
