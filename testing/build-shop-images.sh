#!/usr/bin/env bash
# Builds the real shop's images on this machine with no registry:
#
#   stackctl-local/bookworm-python:latest     Debian bookworm made with mmdebstrap: Python 3.11,
#                                             FastAPI, uvicorn, psycopg2, Celery, redis-py,
#                                             Django 3.2, gunicorn, Flower's dependencies, curl
#   stackctl-local/bookworm-services:latest   Debian bookworm made with mmdebstrap: postgresql-15,
#                                             redis-server, busybox-static
#   stackctl-local/<app>:latest               each of apps/{api,django,flower,postgres,redis,react-app}
#                                             built from its Dockerfile with BASE= the base above
#
# and what the app images copy in from the host: Flower's wheel (apps/flower/wheels/, with pip)
# and the React bundle (apps/react-app/dist/, with npm and esbuild).
#
# The package lists are the apps' own `debian-packages` files, so a base holds exactly what
# the Dockerfiles would otherwise install on a public `debian:bookworm-slim`.
#
# Cached by content: each base carries a label with the sha256 of its package list and
# options, each app image one with the sha256 of its build context and base; npm runs only
# when package-lock.json changed. A warm run does no work and takes a few seconds. Every run
# appends its timings to $cache_dir/timings.log.
#
# Environment:
#   SHOP_IMAGES_CACHE   where timings and the npm stamp live (default <repo>/target/shop-images)
#   SHOP_SKIP_APPS=1    build the bases, the wheel and the bundle, not the app images
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apps="$repo/apps"
cache_dir="${SHOP_IMAGES_CACHE:-$repo/target/shop-images}"
python_base="stackctl-local/bookworm-python:latest"
services_base="stackctl-local/bookworm-services:latest"
# Which base each app is built from.
declare -A base_of_app=(
    [api]="$python_base" [django]="$python_base" [flower]="$python_base"
    [postgres]="$services_base" [redis]="$services_base" [react-app]="$services_base"
)
# Slim: no documentation, manual pages or translations (licences are kept).
mmdebstrap_options=(
    --variant=apt
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --aptopt='Acquire::Languages "none"'
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin'
)
export DOCKER_BUILDKIT=0
started=$SECONDS

log() { printf 'build-shop-images: %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

# The packages of the given apps' debian-packages files, one list, sorted, comma-separated.
packages_of() {
    local files=()
    for app in "$@"; do files+=("$apps/$app/debian-packages"); done
    grep -hv -e '^#' -e '^[[:space:]]*$' "${files[@]}" | sort -u | paste -sd, -
}

# Prints the value of label $2 on image $1, or nothing when the image does not exist.
image_label() {
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# sha256 of a directory's files (paths, modes and contents), ignoring what its .dockerignore
# and .gitignore leave out of the build (node_modules, caches).
directory_hash() {
    local directory="$1"
    (
        cd "$directory"
        find . -type f ! -path './node_modules/*' ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
            LC_ALL=C sort -z |
            xargs -0 -r stat --format '%n %a' |
            sha256sum
        find . -type f ! -path './node_modules/*' ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
            LC_ALL=C sort -z |
            xargs -0 -r sha256sum
    ) | sha256sum | cut -d' ' -f1
}

# build_base IMAGE APP... — an mmdebstrap rootfs with the apps' packages, imported as IMAGE.
build_base() {
    local image="$1"
    shift
    local packages hash
    packages="$(packages_of "$@")"
    hash="$(printf '%s\n' "$packages" "${mmdebstrap_options[@]}" | sha256sum | cut -d' ' -f1)"
    if [[ "$(image_label "$image" stackctl.base.hash)" == "$hash" ]]; then
        log "$image is up to date"
        return 0
    fi
    log "building $image with mmdebstrap: $packages"
    local begun=$SECONDS
    # The rootfs streams straight into `docker import`; no tarball on disk.
    mmdebstrap --quiet "${mmdebstrap_options[@]}" --include="$packages" bookworm - |
        docker import \
            --change "LABEL stackctl.base.hash=$hash" \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["/bin/bash"]' \
            - "$image" >/dev/null
    log "$image built in $((SECONDS - begun)) s"
}

# Flower's wheel from PyPI, without dependencies (Debian's packages provide them).
download_flower_wheel() {
    local wheels="$apps/flower/wheels"
    local requirement
    requirement="$(grep -v '^#' "$apps/flower/requirements.txt" | grep -v '^[[:space:]]*$')"
    local wanted="${requirement//==/-}"
    if compgen -G "$wheels/${wanted}-*.whl" >/dev/null; then
        log "Flower's wheel is present ($requirement)"
        return 0
    fi
    log "downloading Flower's wheel ($requirement) with pip"
    rm -rf "$wheels"
    mkdir -p "$wheels"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" "$requirement"
}

# The React bundle: `npm ci` when package-lock.json changed, then esbuild (fast) every run.
build_react_bundle() {
    local app="$apps/react-app"
    local stamp="$cache_dir/react-app.node_modules.sha256"
    local lock_hash
    lock_hash="$(sha256sum "$app/package-lock.json" | cut -d' ' -f1)"
    if [[ ! -d "$app/node_modules" || "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]]; then
        log "installing the React app's packages (npm ci)"
        (cd "$app" && npm ci --no-audit --no-fund --loglevel=error)
        printf '%s\n' "$lock_hash" >"$stamp"
    fi
    (cd "$app" && npm run --silent build >/dev/null)
    log "React bundle: $(du -h "$app/dist/app.js" | cut -f1) in apps/react-app/dist"
}

# build_app APP — docker build apps/APP with BASE set to its base, unless the image already
# holds the same context built on the same base.
build_app() {
    local app="$1"
    local base="${base_of_app[$app]}"
    local image="stackctl-local/$app:latest"
    local hash
    hash="$( (directory_hash "$apps/$app"; docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -d' ' -f1)"
    if [[ "$(image_label "$image" stackctl.shop.inputs)" == "$hash" ]]; then
        log "$image is up to date"
        return 0
    fi
    log "building $image (BASE=$base)"
    local begun=$SECONDS
    local output
    if ! output="$(docker build --build-arg "BASE=$base" --label "stackctl.shop.inputs=$hash" \
        --tag "$image" "$apps/$app" 2>&1)"; then
        printf '%s\n' "$output" >&2
        fail "building $image failed (its output is above)"
    fi
    log "$image built in $((SECONDS - begun)) s"
}

mkdir -p "$cache_dir"
# One build at a time: tests in one binary run in parallel and each asks for the images;
# two `npm ci` in one directory, or two builds of one tag, would trip over each other.
# The second caller waits, then finds everything up to date.
exec 9>"$cache_dir/build.lock"
flock 9
timeout 20 docker info >/dev/null 2>&1 || fail "the Docker daemon is not reachable (is dockerd running?)"
command -v mmdebstrap >/dev/null || fail "mmdebstrap is not installed (Debian: apt-get install mmdebstrap)"
command -v npm >/dev/null || fail "npm is not installed (the React app is built with node 18 or newer and npm)"
python3 -m pip --version >/dev/null 2>&1 || fail "pip is not installed (Debian: apt-get install python3-pip)"

# The two bases are independent: build them side by side (mostly downloads).
build_base "$python_base" api django flower &
python_job=$!
build_base "$services_base" postgres redis react-app &
services_job=$!
python_status=0 services_status=0
wait "$python_job" || python_status=$?
wait "$services_job" || services_status=$?
((python_status == 0)) || fail "building $python_base failed"
((services_status == 0)) || fail "building $services_base failed"

download_flower_wheel
build_react_bundle

if [[ "${SHOP_SKIP_APPS:-0}" != "1" ]]; then
    for app in api django flower postgres redis react-app; do
        build_app "$app"
    done
fi

elapsed=$((SECONDS - started))
printf '%s %s s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$elapsed" >>"$cache_dir/timings.log"
log "done in $elapsed s (timings: $cache_dir/timings.log)"
