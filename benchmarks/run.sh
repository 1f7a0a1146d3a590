#!/usr/bin/env bash
# Benchmarks: MLHub vs stock JupyterHub + DockerSpawner + CHP, on this machine, in one run.
#
#   bash benchmarks/run.sh                  # issue 18's full protocol: bench (single spawn x10,
#                                           # 10..200 concurrent x3, restart with 100 servers,
#                                           # cleanup over 10,000 objects, ...) then a 4-hour soak
#   bash benchmarks/run.sh bench [ARGS]     # only the comparison (python -m benchmarks.bench --help)
#   bash benchmarks/run.sh soak [ARGS]      # only the soak (python -m benchmarks.soak --help)
#   bash benchmarks/run.sh bench --smoke --out /tmp/bench   # minutes: checks the harness
#
# Same set-up as the test suite (engine, venv, images), plus matplotlib. Run it on a quiet
# machine: other load shows up in the numbers (the results say how busy the machine was).
# Results: benchmarks/results/<date>.{json,md}, plots, <date>-logs/ (hub logs), <date>-soak.md.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/setup.sh
source "$REPO/scripts/lib/setup.sh"
mlhub_setup --test
"$MLHUB_VENV/bin/pip" install --quiet --disable-pip-version-check -e "$REPO[bench,test]"
mlhub_drop_slow_imports
cd "$REPO"
what="${1:-all}"
case "$what" in -*) what=bench ;; *) [ $# -gt 0 ] && shift ;; esac
case "$what" in
    bench) exec "$MLHUB_VENV/bin/python" -m benchmarks.bench "$@" ;;
    soak) exec "$MLHUB_VENV/bin/python" -m benchmarks.soak "$@" ;;
    all)
        status=0
        "$MLHUB_VENV/bin/python" -m benchmarks.bench "$@" || status=1
        "$MLHUB_VENV/bin/python" -m benchmarks.soak --minutes 240 --users 50 || status=1
        exit "$status" ;;
    *) echo "usage: $0 [all|bench|soak] [ARGS]" >&2; exit 2 ;;
esac
