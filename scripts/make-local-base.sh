#!/usr/bin/env bash
# Build a Debian 13 + Python 3.13 base image from Debian's packages, for hosts
# that cannot pull the official python:3.13-slim image (no registry access).
# Usage: make-local-base.sh [IMAGE_TAG [ARCH]]
#   IMAGE_TAG  default ai-trader-base:trixie
#   ARCH       a Debian architecture (amd64, arm64); default the host's own. Another
#              architecture than the host's needs QEMU (qemu-user-static with its binfmt
#              entry registered, as `nox -s multiarch` provides); it is loaded as
#              linux/ARCH.
set -euo pipefail

tag=${1:-ai-trader-base:trixie}
log() { printf 'make-local-base: %s\n' "$*" >&2; }

host_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
arch=${2:-$host_arch}
if [[ ! $arch =~ ^[a-z0-9]+$ ]]; then
    log "ARCH=$arch: give a Debian architecture such as amd64 or arm64"
    exit 2
fi

if docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag already exists"
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    log "debootstrap is missing (apt-get install debootstrap)"
    exit 1
fi

rootfs=$(mktemp -d)
cleanup() { rm -rf "$rootfs" "$rootfs.log" "$rootfs.image"; }
trap cleanup EXIT

# Another architecture than the host's: debootstrap itself runs on the host and only the
# packages' own programs (dpkg, maintainer scripts) run in the new root, handed to QEMU by
# the kernel. (Its --foreign mode with a --second-stage run in the root is far slower: the
# whole second stage, debootstrap's perl included, runs emulated; it had not finished
# after 25 minutes here.)
stages=(--variant=minbase "--include=python3,python3-venv,ca-certificates")
if [[ $arch != "$host_arch" ]]; then
    stages+=(--arch "$arch")
fi

log "debootstrapping Debian trixie ($arch) into a temporary folder (a minute; more under QEMU)"
debootstrap "${stages[@]}" trixie "$rootfs" >"$rootfs.log" 2>&1 || {
    log "debootstrap failed; last lines:"
    tail -n 20 "$rootfs.log" >&2
    exit 1
}
# Keep the image small: no apt caches, package lists or docs.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*

# The image's PATH and command, as the official image has them.
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [[ $arch == "$host_arch" ]]; then
    log "importing as $tag"
    tar -C "$rootfs" -c . | docker import --change "ENV PATH=$path" \
        --change 'CMD ["python3"]' - "$tag" >/dev/null
else
    # `docker import --platform` still records the engine's own architecture (Engine
    # 20.10, seen here), and a build FROM the image inherits it. So another architecture
    # is loaded as an image archive whose config names it: one layer, the root file system.
    log "loading as $tag (linux/$arch)"
    archive=$rootfs.image
    mkdir "$archive"
    tar -C "$rootfs" -cf "$archive/layer.tar" .
    layer=$(sha256sum "$archive/layer.tar")
    created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    printf '{"architecture":"%s","os":"linux","created":"%s","config":{"Env":["PATH=%s"],"Cmd":["python3"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":"make-local-base.sh: debootstrap trixie %s"}]}' \
        "$arch" "$created" "$path" "${layer%% *}" "$created" "$arch" >"$archive/config.json"
    config=$(sha256sum "$archive/config.json")
    mv "$archive/config.json" "$archive/${config%% *}.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' \
        "${config%% *}" "$tag" >"$archive/manifest.json"
    tar -C "$archive" -c manifest.json "${config%% *}.json" layer.tar | docker load >/dev/null
fi
log "done: $(docker image inspect --format '{{.Size}} bytes, {{.Os}}/{{.Architecture}}' "$tag")"
