#!/usr/bin/env bash
# Build MLHub's images without a container registry.
#
#   bash docker/build-images.sh [--flavor minimal] [--hub] [--with-test-images] [--force]
#
# 1. Base image: MLHUB_BASE_IMAGE if set (must exist locally or be pullable), else
#    mlhub/base:bookworm, built offline by docker/base/build-base-image.sh when missing.
# 2. Wheelhouse: Python wheels downloaded on the host (PyPI) into .mlhub/wheelhouse/,
#    reused while the requirements file is unchanged.
# 3. Images (classic builder, DOCKER_BUILDKIT=0): mlhub/workspace:<flavor> tagged also
#    mlhub/workspace:latest; with --hub the hub image mlhub/mlhub:latest (MLHub and its
#    dependencies as wheels built on the host, configurable-http-proxy from .mlhub/node);
#    with --with-test-images also mlhub/test-stock:latest and the hub image.
#    An image is rebuilt only when its inputs (Dockerfile, files, requirements, base image)
#    changed, or with --force.
# Env: MLHUB_BASE_IMAGE, MLHUB_PIP (pip command for downloads; default: the venv's pip).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
flavor=minimal
with_test=0
with_hub=0
force=0
while [ $# -gt 0 ]; do
    case "$1" in
        --flavor) flavor="${2:?--flavor needs a value}"; shift ;;
        --with-test-images) with_test=1; with_hub=1 ;;
        --hub) with_hub=1 ;;
        --force) force=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "[mlhub-setup] unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ ! -f "$REPO/docker/workspace/requirements-$flavor.txt" ]; then
    echo "[mlhub-setup] --flavor: no flavor '$flavor' (have: $(cd "$REPO/docker/workspace" && ls requirements-*.txt | sed 's/requirements-//; s/.txt//' | tr '\n' ' '))" >&2
    exit 2
fi

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
    key="$(sha256sum "$reqs" | cut -c1-12)"
    dir="$REPO/.mlhub/wheelhouse/$name-$key"
    if [ ! -f "$dir/.complete" ]; then
        echo "[mlhub-setup] downloading wheels for $name (Python 3.11, manylinux)" >&2
        rm -rf "$dir" && mkdir -p "$dir"
        "${pip_cmd[@]}" download --quiet --disable-pip-version-check --only-binary=:all: \
            --python-version 3.11.2 --implementation cp --abi cp311 --abi abi3 --abi none \
            --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux_2_28_x86_64 --platform any \
            -d "$dir" -r "$reqs" >&2
        touch "$dir/.complete"
    fi
    echo "$dir"
}

# build NAME DOCKERFILE_DIR REQUIREMENTS TAG... (extra build args in BUILD_ARGS)
build() {
    local name="$1" src="$2" reqs="$3"; shift 3
    local hash ctx wheels current
    hash="$( (cd "$src" && find . -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; echo "$base_id ${BUILD_ARGS[*]:-}") | sha256sum | cut -c1-16)"
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
    local tags=()
    for tag in "$@"; do tags+=(-t "$tag"); done
    echo "[mlhub-setup] building ${*} from $base"
    local start=$SECONDS
    DOCKER_BUILDKIT=0 docker build --quiet --build-arg "BASE_IMAGE=$base" \
        --build-arg "INPUTS_HASH=$hash" "${BUILD_ARGS[@]}" "${tags[@]}" "$ctx" >/dev/null
    echo "[mlhub-setup] built $1 in $((SECONDS - start)) s"
    rm -rf "$ctx"
}

BUILD_ARGS=(--build-arg "FLAVOR=$flavor")
build "workspace-$flavor" "$REPO/docker/workspace" "$REPO/docker/workspace/requirements-$flavor.txt" \
    "mlhub/workspace:$flavor" "mlhub/workspace:latest"
if [ "$with_test" = 1 ]; then
    BUILD_ARGS=()
    build test-stock "$REPO/tests/images/stock" "$REPO/tests/images/stock/requirements.txt" \
        "mlhub/test-stock:latest"
fi

# The hub image: its context is assembled from the repository (not a Dockerfile folder).
build_hub() {
    local hash current ctx start
    hash="$( (cd "$REPO" && find mlhubspawner cleanup_service ssh_gateway docker/hub pyproject.toml jupyterhub_config.py \
        -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; echo "$base_id") | sha256sum | cut -c1-16)"
    current="$(docker image inspect --format '{{ index .Config.Labels "io.mlhub.image.inputs" }}' mlhub/mlhub:latest 2>/dev/null || true)"
    if [ "$force" = 0 ] && [ "$current" = "$hash" ]; then
        echo "[mlhub-setup] image mlhub/mlhub:latest is up to date"
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
    echo "[mlhub-setup] building mlhub/mlhub:latest from $base"
    start=$SECONDS
    DOCKER_BUILDKIT=0 docker build --quiet --build-arg "BASE_IMAGE=$base" \
        --build-arg "INPUTS_HASH=$hash" -t mlhub/mlhub:latest "$ctx" >/dev/null
    echo "[mlhub-setup] built mlhub/mlhub:latest in $((SECONDS - start)) s"
    rm -rf "$ctx"
}
if [ "$with_hub" = 1 ]; then
    build_hub
fi
