#!/usr/bin/env bash
# Build the Kubernetes server binaries the CI cluster runs (scripts/kube/cluster.sh), once per source
# version, from Debian bookworm's `kubernetes` source package, and cache them on the machine.
#
# No registry offers Kubernetes server binaries or images here (see ../shared/docs/kubernetes.md);
# Debian's source package is the full upstream tree with vendor/. Two constants of the kubelet are
# patched to 0 before building: the sandbox lacks CAP_SYS_RESOURCE, so runc cannot give containers a
# negative oom_score_adj and every pod sandbox would fail to start.
#
# Usage (as root):  scripts/kube/binaries.sh        prints the folder holding bin/ when done
# The build (~10 min on 2 busy cores, 1.4 GB peak RSS) runs only when the cache for the version is
# missing; otherwise this prints the cached folder at once.
# Settings (environment):
#   KUBE_SOURCE_VERSION  Debian source version (default below; the cache is keyed on it)
#   KUBE_CACHE           cache root (default /var/cache/nexa/kubernetes)
#   DEBIAN_MIRROR        mirror for the source (default: the one apt on this machine uses)
set -euo pipefail

KUBE_SOURCE_VERSION=${KUBE_SOURCE_VERSION:-1.20.5+really1.20.2-1.1+deb12u1}
KUBE_CACHE=${KUBE_CACHE:-/var/cache/nexa/kubernetes}
CACHED="$KUBE_CACHE/$KUBE_SOURCE_VERSION"
SERVER_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

log() { printf '[kube-binaries %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# A complete cache has every binary and the stamp written last; a half-finished build has no stamp.
if [ -f "$CACHED/complete" ]; then
    echo "$CACHED"
    exit 0
fi
[ "$(id -u)" = 0 ] || die "run as root (it installs the build tools with apt)"

# "1.20.5+really1.20.2-1.1+deb12u1" packages upstream v1.20.2: the version the binaries report.
upstream=${KUBE_SOURCE_VERSION%-*}
upstream=${upstream##*really}
upstream=${upstream%%+*}
[[ $upstream =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "cannot read the upstream version from $KUBE_SOURCE_VERSION"
major=${BASH_REMATCH[1]}
minor=${BASH_REMATCH[2]}

# One build at a time (two CI steps, or two shells, may ask at once); the second then finds the cache.
mkdir -p "$KUBE_CACHE"
exec 9>"$KUBE_CACHE/.lock"
flock 9
if [ -f "$CACHED/complete" ]; then
    echo "$CACHED"
    exit 0
fi
# The build tree is left behind on failure (for its logs) and removed by the next run.
work="$KUBE_CACHE/build"
rm -rf "$work"
mkdir -p "$work/apt/lists/partial" "$work/download"
started=$(date +%s)

# golang-go is bookworm's Go 1.19, which builds the 1.20 tree; gcc + libc6-dev for the static pause binary.
missing=()
# rsync: the tree's build scripts place the openapi-gen tool with it.
for tool in go:golang-go gcc:gcc dpkg-source:dpkg-dev rsync:rsync; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} with apt"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 1. Source: a private deb-src list, so the machine's apt configuration is left as it was.
mirror=${DEBIAN_MIRROR:-$(grep -h -m1 -oE '^(URIs:|deb) +https?://[^ ]+/debian/?' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}' || true)}
mirror=${mirror:-http://deb.debian.org/debian}
printf 'deb-src %s bookworm main\n' "$mirror" >"$work/apt/sources.list"
apt_src=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/apt/lists")
log "fetching the kubernetes $KUBE_SOURCE_VERSION source package from $mirror"
apt-get "${apt_src[@]}" update -qq
(cd "$work/download" && apt-get "${apt_src[@]}" source --download-only -qq "kubernetes=$KUBE_SOURCE_VERSION" >/dev/null 2>&1) || {
    offered=$(cd "$work/download" && apt-get "${apt_src[@]}" source --download-only --print-uris kubernetes 2>/dev/null \
        | grep -oE "kubernetes_[^ ']+\.dsc" | head -1)
    die "kubernetes=$KUBE_SOURCE_VERSION is not in $mirror (it offers ${offered:-none}); set KUBE_SOURCE_VERSION"
}
# dpkg-source unpacks the upstream tarball and applies debian/patches/series.
# (apt already checked the files against the signed archive index; dpkg-source's own signature
# warning is noise.)
dpkg-source -x "$work"/download/kubernetes_*.dsc "$work/src" >"$work/dpkg-source.log" 2>&1 ||
    { tail -20 "$work/dpkg-source.log" >&2; die "dpkg-source -x failed"; }

# 2. The two oom_score_adj constants (why: see the top of this file). Fail if the source moved.
patch_constant() {
    local file="$work/src/$1" name=$2
    sed -i -E "s/^(\s*$name\s+int\s*=\s*)-[0-9]+/\10/" "$file"
    grep -qE "^\s*$name\s+int\s*=\s*0\b" "$file" || die "could not set $name to 0 in $1"
}
patch_constant pkg/kubelet/qos/policy.go guaranteedOOMScoreAdj
patch_constant pkg/kubelet/dockershim/docker_sandbox.go defaultSandboxOOMAdj

# 3. Build in GOPATH mode (the 1.20 tree's module mode fails with this Go), statically.
export GOPATH="$work/gopath" GOCACHE="$work/gocache" GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
mkdir -p "$GOPATH/src/k8s.io"
ln -s "$work/src" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
log "generating the OpenAPI definitions kube-apiserver needs (not in the tarball)"
make gen_openapi >"$work/gen_openapi.log" 2>&1 || { tail -30 "$work/gen_openapi.log" >&2; die "make gen_openapi failed"; }
ldflags=""
for key_value in "gitVersion=v$upstream" "gitMajor=$major" "gitMinor=$minor" "gitTreeState=clean" \
    "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
    for package in client-go/pkg/version component-base/version; do
        ldflags+=" -X k8s.io/kubernetes/vendor/k8s.io/$package.$key_value"
    done
done
mkdir -p "$work/out/bin"
# One `go build` for all of them: the packages they share are compiled once, in parallel.
log "go build ${SERVER_BINARIES[*]} (the longest step)"
go build -trimpath -ldflags "-s -w $ldflags" -o "$work/out/bin/" "${SERVER_BINARIES[@]/#/./cmd/}" \
    >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; die "go build failed"; }
log "gcc -static build/pause/linux/pause.c"
gcc -Os -static -o "$work/out/bin/pause" build/pause/linux/pause.c

# 4. Into the cache, atomically: the stamp names what was built and how long it took.
"$work/out/bin/kubelet" --version >&2
rm -rf "$CACHED"
mv "$work/out" "$CACHED"
printf 'source %s\nupstream v%s\nbuilt %s in %ss\n' "$KUBE_SOURCE_VERSION" "$upstream" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(($(date +%s) - started))" >"$CACHED/complete"
cd /
rm -rf "$work"
log "cached in $CACHED ($(du -sh "$CACHED" | cut -f1), $(($(date +%s) - started)) s)"
echo "$CACHED"
