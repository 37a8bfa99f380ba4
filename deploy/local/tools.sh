#!/usr/bin/env bash
# Installs the command-line tools the deploy tests and local scripts use into
# <repo>/.local/bin. Idempotent: a tool already present at the pinned version
# is left alone. Every tool is built from source through the Go module proxy,
# so nothing but a Go toolchain (>= 1.26) is needed.
#
#   bash deploy/local/tools.sh            # install whatever is missing
#   bash deploy/local/tools.sh kustomize  # only one tool
#   bash deploy/local/tools.sh centrifugo # the peer bench/peers.py runs (not by default)
#
# `weed` (SeaweedFS, the local S3-compatible object store) takes about five
# minutes to build on two cores the first time; it is cached like the rest.
set -euo pipefail

# kustomize v5.8.3 requires Go >= 1.27; v5.8.2 is the newest that builds on 1.26.
KUSTOMIZE_VERSION="v5.8.2"
GRPCURL_VERSION="v1.9.4"
# SeaweedFS publishes no tagged Go module versions; this is the pseudo-version
# the module proxy serves.
SEAWEEDFS_VERSION="v0.0.0-20261109003541-7506e5f91cd6"
# The peer bench/peers.py compares against, at a fixed version so that
# comparisons across days measure chatmesh, not Centrifugo's releases.
CENTRIFUGO_VERSION="v6.9.1"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR="${REPO_ROOT}/.local/bin"

find_go() {
    if command -v go >/dev/null 2>&1; then
        command -v go
    elif [ -x /usr/local/go/bin/go ]; then
        echo /usr/local/go/bin/go
    else
        echo "tools.sh: no Go toolchain found (need go >= 1.26 on PATH or at /usr/local/go/bin/go)" >&2
        exit 1
    fi
}

# The version stamp file records what was built, since neither binary reports
# the module version reliably when built with `go install`.
installed_version() {
    local stamp="${BIN_DIR}/.$1.version"
    if [ -x "${BIN_DIR}/$1" ] && [ -f "${stamp}" ]; then
        cat "${stamp}"
    fi
}

install_tool() {
    local name="$1" module="$2" version="$3"
    if [ "$(installed_version "${name}")" = "${version}" ]; then
        echo "${name} ${version} already installed at ${BIN_DIR}/${name}"
        return 0
    fi
    local go
    go="$(find_go)"
    mkdir -p "${BIN_DIR}"
    echo "installing ${name} ${version} into ${BIN_DIR}"
    # GOTOOLCHAIN=local: fail loudly rather than silently download another Go.
    GOTOOLCHAIN=local GOBIN="${BIN_DIR}" GOFLAGS="-buildvcs=false" CGO_ENABLED=0 \
        "${go}" install "${module}@${version}"
    echo "${version}" > "${BIN_DIR}/.${name}.version"
}

install_kustomize() {
    install_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "${KUSTOMIZE_VERSION}"
}

install_grpcurl() {
    install_tool grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl "${GRPCURL_VERSION}"
}

# `go install` refuses the weed command (its go.mod has replace directives),
# so it is built as the main module from the downloaded source.
install_seaweedfs() {
    local version="${SEAWEEDFS_VERSION}"
    if [ "$(installed_version weed)" = "${version}" ]; then
        echo "weed ${version} already installed at ${BIN_DIR}/weed"
        return 0
    fi
    local go source work
    go="$(find_go)"
    mkdir -p "${BIN_DIR}"
    echo "building weed (SeaweedFS) ${version} into ${BIN_DIR}; about five minutes"
    source="$(GOTOOLCHAIN=local GOFLAGS=-mod=mod "${go}" mod download -json \
        "github.com/seaweedfs/seaweedfs@${version}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    work="$(mktemp -d)"
    # A subshell, so the copy of the source is removed however the build ends.
    (
        trap 'rm -rf "${work}"' EXIT
        cp -r "${source}/." "${work}/"
        chmod -R u+w "${work}"
        cd "${work}"
        GOTOOLCHAIN=local GOFLAGS="-buildvcs=false" CGO_ENABLED=0 \
            "${go}" build -o "${BIN_DIR}/weed.partial" ./weed
    )
    mv "${BIN_DIR}/weed.partial" "${BIN_DIR}/weed"
    echo "${version}" > "${BIN_DIR}/.weed.version"
}

# Not in the default set: only bench/peers.py uses it, and it takes about two
# minutes to build cold.
install_centrifugo() {
    install_tool centrifugo github.com/centrifugal/centrifugo/v6 "${CENTRIFUGO_VERSION}"
}

# The web client's browser tests drive Debian's Chromium (Playwright's own
# browser download is not reachable from CI). A system package: root only.
install_chromium() {
    if [ -x /usr/bin/chromium ]; then
        echo "chromium already installed at /usr/bin/chromium"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "tools.sh: chromium is missing; as root: apt-get install -y chromium" >&2
        exit 1
    fi
    echo "installing chromium with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
}

main() {
    if [ "$#" -eq 0 ]; then
        set -- kustomize grpcurl seaweedfs chromium
    fi
    for tool in "$@"; do
        case "${tool}" in
            kustomize) install_kustomize ;;
            grpcurl) install_grpcurl ;;
            seaweedfs) install_seaweedfs ;;
            chromium) install_chromium ;;
            centrifugo) install_centrifugo ;;
            *) echo "tools.sh: unknown tool '${tool}' (known: kustomize grpcurl seaweedfs chromium centrifugo)" >&2; exit 2 ;;
        esac
    done
}

# Allow `source deploy/local/tools.sh` to get the functions without running.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
