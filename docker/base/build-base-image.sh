#!/usr/bin/env bash
# Build MLHub's local base image without any container registry (air-gapped hosts, CI).
#
#   bash docker/base/build-base-image.sh [--force] [IMAGE]
#
# Bootstraps a minimal Debian bookworm with Python 3 (debootstrap, from Debian's archive)
# and imports it as IMAGE (default mlhub/base:bookworm). Skips when IMAGE exists, unless
# --force. Env: MLHUB_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
force=0
image="mlhub/base:bookworm"
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        -*) echo "[mlhub-setup] unknown option: $arg" >&2; exit 2 ;;
        *) image="$arg" ;;
    esac
done
mirror="${MLHUB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "[mlhub-setup] base image $image exists"
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "[mlhub-setup] installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
rootfs="$(mktemp -d /tmp/mlhub-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "[mlhub-setup] bootstrapping Debian bookworm into $rootfs (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$rootfs" "$mirror" >/tmp/mlhub-debootstrap.log 2>&1 || {
    echo "[mlhub-setup] debootstrap failed; see /tmp/mlhub-debootstrap.log" >&2; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "[mlhub-setup] built base image $image"
