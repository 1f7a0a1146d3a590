#!/usr/bin/env bash
# MLHub quick start: set up this machine (Debian/Ubuntu, as root) and run the hub.
#
#   bash scripts/start-hub.sh
#
# Installs what is missing (Docker engine, Python venv, configurable-http-proxy), builds the
# workspace image (offline-capable), then runs JupyterHub with MLHub's default config on
# http://localhost:8080 (MLHUB_PORT). Every variable in the README's table is honoured.
# On first start an admin account is created: user "admin" (MLHUB_ADMIN_USER) with the
# password in MLHUB_ADMIN_PASSWORD, or a generated one saved in the data directory.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/setup.sh
source "$REPO/scripts/lib/setup.sh"
mlhub_setup

export MLHUB_DATA_DIR="${MLHUB_DATA_DIR:-$REPO/.mlhub/data}"
mkdir -p "$MLHUB_DATA_DIR" && chmod 700 "$MLHUB_DATA_DIR"
password_file="$MLHUB_DATA_DIR/initial-admin-password"
if [ -z "${MLHUB_ADMIN_PASSWORD:-}" ]; then
    if [ ! -s "$password_file" ]; then
        (umask 077 && "$MLHUB_VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(12))' >"$password_file")
    fi
    MLHUB_ADMIN_PASSWORD="$(cat "$password_file")"
    export MLHUB_ADMIN_PASSWORD
    password_hint="the password in $password_file"
else
    password_hint="the password in MLHUB_ADMIN_PASSWORD"
fi

cat <<MSG
[mlhub] MLHub is starting on ${MLHUB_PUBLIC_URL:-http://localhost:${MLHUB_PORT:-8080}}
[mlhub] Each user's workspaces are served on <user>.<that host>; from other machines, set
[mlhub] MLHUB_PUBLIC_URL to a name whose *.name also points here (see README: Per-user origins).
[mlhub] Log in as '${MLHUB_ADMIN_USER:-admin}' with $password_hint (set on first start only).
[mlhub] Others sign up at /hub/signup; the admin authorizes them at /hub/authorize.
MSG
cd "$MLHUB_DATA_DIR"
exec "$MLHUB_VENV/bin/jupyterhub" -f "$REPO/jupyterhub_config.py"
