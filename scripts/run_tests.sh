#!/usr/bin/env bash
# Run the test suite in the project's virtual environment.
#   scripts/run_tests.sh            default suite (not slow, not gpu)
#   scripts/run_tests.sh -m slow    the slow suites (rendering, long training), on demand
# Any further arguments go to pytest. pytest's exit code 5 ("no tests collected") fails the
# default run loudly (the suite always has tests, so collecting none means it broke) and is
# reported but accepted for an explicit marker selection that may legitimately be empty
# (e.g. `-m gpu` on a machine without CUDA).
# The default suite runs on 2 pytest-xdist workers (1 on a 1-core machine), whole files per worker
# (`--dist loadfile`: a file's module fixtures are built once): many of its tests wait on DDS
# discovery, subprocess start-up and timeouts, which a second worker overlaps. Each worker has a
# ROS domain of its own (tests/conftest.py). TEST_WORKERS=N sets the count (1: no xdist); with
# explicit arguments the run is serial unless TEST_WORKERS is set or the arguments pass -n.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
source scripts/ros_env.sh
if [ $# -eq 0 ]; then set -- -m "not slow and not gpu"; explicit=0; else explicit=1; fi
cores=$(nproc 2>/dev/null || echo 1)
workers=${TEST_WORKERS:-$([ $explicit -eq 0 ] && echo $(( cores < 2 ? 1 : 2 )) || echo 1)}
if [ "$workers" -gt 1 ]; then
  if "$VENV/bin/python" -c "import xdist" 2>/dev/null; then set -- -n "$workers" --dist loadfile "$@"
  else echo "[tests] pytest-xdist is not installed in $VENV (scripts/setup_env.sh installs it): running serially"; fi
fi
"$VENV/bin/python" -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then
  if [ $explicit -eq 1 ]; then echo "[tests] no test matched the selection ($*): nothing to run"; exit 0; fi
  echo "[tests] ERROR: pytest collected no tests in the default suite"; exit 1
fi
exit $rc
