#!/usr/bin/env bash
# Benchmarks: MLHub vs stock JupyterHub + DockerSpawner + CHP, on this machine, in one run.
#
#   bash benchmarks/run.sh [--quick] [--reps 10] [--max-concurrent 50] [--idle 100] [--requests 2000]
#
# Same set-up as the test suite (engine, venv, images), plus matplotlib; then writes
# benchmarks/results/<date>.md and PNG plots. Takes about 20 minutes on 2 cores (--quick: 2).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/setup.sh
source "$REPO/scripts/lib/setup.sh"
mlhub_setup --test
"$MLHUB_VENV/bin/pip" install --quiet --disable-pip-version-check -e "$REPO[bench,test]"
cd "$REPO"
exec "$MLHUB_VENV/bin/python" -m benchmarks.bench "$@"
