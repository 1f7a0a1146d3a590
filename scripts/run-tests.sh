#!/usr/bin/env bash
# Set up this machine (Debian/Ubuntu, as root) and run MLHub's whole test suite.
#
#   bash scripts/run-tests.sh [pytest args...]
#
# Same set-up as the quick start plus test dependencies and test images; then pytest runs
# against the real Docker engine. Extra arguments go to pytest (e.g. -k spawner -x).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/setup.sh
source "$REPO/scripts/lib/setup.sh"
mlhub_setup --test

cd "$REPO"
"$MLHUB_VENV/bin/ruff" check mlhub mlhubspawner tests benchmarks jupyterhub_config.py
exec "$MLHUB_VENV/bin/python" -m pytest "$@"
