#!/usr/bin/env bash
# Build a Debian 13 + Python 3.13 base image from Debian's packages, for hosts
# that cannot pull the official python:3.13-slim image (no registry access).
# Usage: make-local-base.sh [IMAGE_TAG]   (default: ai-trader-base:trixie)
set -euo pipefail

tag=${1:-ai-trader-base:trixie}
log() { printf 'make-local-base: %s\n' "$*" >&2; }

if docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag already exists"
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    log "debootstrap is missing (apt-get install debootstrap)"
    exit 1
fi

rootfs=$(mktemp -d)
cleanup() { rm -rf "$rootfs"; }
trap cleanup EXIT

log "debootstrapping Debian trixie into a temporary folder (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    trixie "$rootfs" >"$rootfs.log" 2>&1 || {
    log "debootstrap failed; last lines:"
    tail -n 20 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"
# Keep the image small: no apt caches, package lists or docs.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*

log "importing as $tag"
tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' - "$tag" >/dev/null
log "done: $(docker image inspect --format '{{.Size}}' "$tag") bytes"
