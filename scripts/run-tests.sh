#!/usr/bin/env bash
# Set up this machine (Debian/Ubuntu, as root) and run MLHub's whole test suite, in two lanes.
#
#   bash scripts/run-tests.sh [pytest args...]     # both lanes (what CI runs)
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
echo "[mlhub-tests] real-engine lane: tests (without tests/unit)"
exec "$MLHUB_VENV/bin/python" -m pytest tests --ignore=tests/unit "$@"
