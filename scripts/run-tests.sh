#!/usr/bin/env bash
# Set up this machine (Debian/Ubuntu, as root) and run MLHub's whole test suite, in two lanes.
#
#   bash scripts/run-tests.sh [pytest args...]     # both lanes (what CI runs)
#   MLHUB_TEST_WORKERS=1 bash scripts/run-tests.sh  # the real-engine lane on one worker
#   bash scripts/run-tests.sh --unit [pytest args] # the unit lane only: a venv, no engine, < 1 min
#
# 1. Checks: ruff (lint and format) over the code, mypy over mlhub/core.
# 2. The unit lane, tests/unit: pure logic, no engine and no subprocess (tests/unit/conftest.py
#    refuses both), so a mistake there stops the run before any machine set-up.
# 3. The real-engine lane, everything else in tests/: the same set-up as the quick start plus test
#    dependencies and test images, then pytest against the real Docker engine, real hubs,
#    OpenSSH and Chromium. Extra arguments go to pytest in both lanes (e.g. -k spawner -x).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/setup.sh
source "$REPO/scripts/lib/setup.sh"
unit_only=0
if [ "${1:-}" = "--unit" ]; then
    unit_only=1
    shift
fi
cd "$REPO"
mlhub_setup --venv-only
CODE=(mlhub mlhubspawner devtools tests benchmarks jupyterhub_config.py)
"$MLHUB_VENV/bin/ruff" check "${CODE[@]}"
"$MLHUB_VENV/bin/ruff" format --check "${CODE[@]}"
"$MLHUB_VENV/bin/mypy" mlhub/core
echo "[mlhub-tests] unit lane: tests/unit"
"$MLHUB_VENV/bin/python" -m pytest tests/unit "$@"
[ "$unit_only" = 1 ] && exit 0

mlhub_setup --test
# Two workers (pytest-xdist, a test file stays on one worker): the tests mostly wait for
# containers and hubs, so two at once halve the time on 2 cores. Every test hub has its own
# name and ports; the engine-restart test runs alone afterwards (it stops every container).
echo "[mlhub-tests] real-engine lane: tests (without tests/unit), two workers"
"$MLHUB_VENV/bin/python" -m pytest tests --ignore=tests/unit -n "${MLHUB_TEST_WORKERS:-2}" --dist loadfile \
    -m "not restarts_engine" "$@"
echo "[mlhub-tests] real-engine lane: the engine-restart test, alone"
status=0
"$MLHUB_VENV/bin/python" -m pytest tests --ignore=tests/unit -m restarts_engine "$@" || status=$?
# 5: no test selected (e.g. a -k that names none of them)
[ "$status" = 5 ] && status=0
exit "$status"
