# shellcheck shell=bash
# MLHub machine set-up, sourced by scripts/start-hub.sh and scripts/run-tests.sh.
#
#   source scripts/lib/setup.sh && mlhub_setup [--test | --venv-only]
#
# Idempotent; each step is skipped when already done and says what it did:
#   1. Debian packages that are missing (docker.io only when no engine answers and no dockerd
#      is installed; nodejs/npm only without node; python3-venv; debootstrap;
#      openssh-sftp-server; build tools and headers for code-server's native modules; with --test also faketime, openssh-client, rsync, postgresql and chromium).
#      `apt-get update` runs once, only if needed.
#   2. The Docker engine: started in the background only when `docker info` fails
#      (log: /var/log/mlhub-dockerd.log).
#   3. The Python venv (MLHUB_VENV, default .venv) with MLHub installed (editable; with
#      --test also its test extras); re-installed only when pyproject.toml changed.
#   4. configurable-http-proxy 5 from npm into .mlhub/node.
#   5. The images: docker/build-images.sh (with --test also the test images).
# Exports MLHUB_VENV and PATH (venv and proxy first).

_mlhub_log() { echo "[mlhub-setup] $*"; }

_mlhub_apt_install() {
    [ $# -gt 0 ] || return 0
    if [ "$(id -u)" != 0 ]; then
        _mlhub_log "missing packages: $* (run as root, or install them first)" >&2
        return 1
    fi
    _mlhub_log "installing Debian packages: $*"
    if [ -z "${_MLHUB_APT_UPDATED:-}" ]; then
        apt-get update -qq
        _MLHUB_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

_mlhub_packages() {
    local test="$1" wanted=()
    python3 -c 'import venv, ensurepip' 2>/dev/null || wanted+=(python3-venv)
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || wanted+=(nodejs npm)
    command -v debootstrap >/dev/null 2>&1 || wanted+=(debootstrap)
    command -v git >/dev/null 2>&1 || wanted+=(git)
    command -v curl >/dev/null 2>&1 || wanted+=(curl ca-certificates)
    # code-server's native modules are built on the host for the workspace image
    dpkg -s libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config g++ make >/dev/null 2>&1 \
        || wanted+=(libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config g++ make)
    # the SSH gateway lends its sftp-server to workspace images that have none
    [ -x /usr/lib/openssh/sftp-server ] || wanted+=(openssh-sftp-server)
    if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
        wanted+=(docker.io)
    fi
    if [ "$test" = 1 ]; then
        command -v faketime >/dev/null 2>&1 || wanted+=(faketime)
        command -v ssh >/dev/null 2>&1 || wanted+=(openssh-client)
        command -v rsync >/dev/null 2>&1 || wanted+=(rsync)
        command -v initdb >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/initdb ] || wanted+=(postgresql)
        # UI tests: Playwright drives Debian's Chromium (Playwright's own download is unreachable)
        [ -x /usr/bin/chromium ] || wanted+=(chromium)
        # LDAP login tests run their own slapd (temporary config and port; not the system service)
        [ -x /usr/sbin/slapd ] || wanted+=(slapd)
        command -v ldapadd >/dev/null 2>&1 || wanted+=(ldap-utils)
    fi
    _mlhub_apt_install "${wanted[@]}"
}

_mlhub_docker() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    _mlhub_log "no Docker engine answers: starting dockerd (log: /var/log/mlhub-dockerd.log)"
    nohup dockerd >>/var/log/mlhub-dockerd.log 2>&1 &
    local waited=0
    until docker info >/dev/null 2>&1; do
        sleep 1
        waited=$((waited + 1))
        if [ "$waited" -ge 60 ]; then
            _mlhub_log "dockerd did not answer within 60 s; see /var/log/mlhub-dockerd.log" >&2
            return 1
        fi
    done
    _mlhub_log "Docker engine is up"
}

_mlhub_venv() {
    local repo="$1" test="$2" extras="" stamp
    MLHUB_VENV="${MLHUB_VENV:-$repo/.venv}"
    if [ ! -x "$MLHUB_VENV/bin/python" ]; then
        _mlhub_log "creating the Python venv in $MLHUB_VENV"
        python3 -m venv "$MLHUB_VENV"
    fi
    [ "$test" = 1 ] && extras="[test]"
    stamp="$MLHUB_VENV/.mlhub-installed"
    local want
    want="$(sha256sum "$repo/pyproject.toml" | cut -c1-16)$extras"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        _mlhub_log "installing MLHub$extras into the venv"
        "$MLHUB_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
        "$MLHUB_VENV/bin/pip" install --quiet --disable-pip-version-check -e "$repo$extras"
        echo "$want" >"$stamp"
    fi
    mlhub_drop_slow_imports
    export MLHUB_VENV
}

# jsonschema[format-nongpl] (through jupyter-events) brings rfc3987-syntax, which builds its
# grammars when imported: about 3 s of every hub start (docs/decisions/workspace-start-time.md).
# Call after every pip install into the venv: pip brings it back.
mlhub_drop_slow_imports() {
    if compgen -G "$MLHUB_VENV/lib/python3*/site-packages/rfc3987_syntax" >/dev/null; then
        "$MLHUB_VENV/bin/pip" uninstall --quiet --disable-pip-version-check -y rfc3987-syntax lark
    fi
}

_mlhub_proxy() {
    local repo="$1" prefix="$1/.mlhub/node"
    if [ ! -x "$prefix/node_modules/.bin/configurable-http-proxy" ]; then
        _mlhub_log "installing configurable-http-proxy 5 (npm) into $prefix"
        mkdir -p "$prefix"
        npm install --silent --no-audit --no-fund --prefix "$prefix" configurable-http-proxy@5 >/dev/null
    fi
    PATH="$prefix/node_modules/.bin:$PATH"
}

mlhub_setup() {
    local test=0 venv_only=0 repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    for arg in "$@"; do
        case "$arg" in
            --test) test=1 ;;
            --venv-only) venv_only=1 ;;
            *) _mlhub_log "mlhub_setup: unknown option $arg" >&2; return 2 ;;
        esac
    done
    if [ "$venv_only" = 1 ]; then
        # the unit lane: the venv with MLHub and its test extras, nothing else
        _mlhub_venv "$repo" 1
        PATH="$MLHUB_VENV/bin:$PATH"
        export PATH
        return 0
    fi
    _mlhub_packages "$test"
    _mlhub_docker
    _mlhub_venv "$repo" "$test"
    _mlhub_proxy "$repo"
    PATH="$MLHUB_VENV/bin:$PATH"
    # Debian keeps PostgreSQL's server programs off PATH
    for pg in /usr/lib/postgresql/*/bin; do
        if [ -d "$pg" ]; then PATH="$PATH:$pg"; fi
    done
    export PATH
    if [ "$test" = 1 ]; then
        bash "$repo/docker/build-images.sh" --with-test-images
    else
        bash "$repo/docker/build-images.sh"
    fi
}
