#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, for the cluster tests (tests/cluster) and for trying
# the Helm chart by hand: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet
# (dockershim on the local Docker engine, so pods run the locally built images), kube-proxy
# (iptables), a CNI bridge and a cluster DNS (scripts/kube/dns.py). Facts and pitfalls behind every
# setting: ../shared/docs/kubernetes.md.
#
# Usage (as root):
#   scripts/kube/cluster.sh prepare   packages, the binaries (built once and cached: binaries.sh), pause image
#   scripts/kube/cluster.sh up        prepare, then start everything; prints `export KUBECONFIG=...`
#   scripts/kube/cluster.sh down      stop every process by its PID, remove the pod containers, the
#                                     bridge, the iptables rules and the mounts, restore the sysctls
#   scripts/kube/cluster.sh status    the components, their PIDs and RSS; exit 1 unless all run
#   scripts/kube/cluster.sh logs      the end of every component's log
# `up` on a running cluster only checks it; on a half-running one it takes it down first. Every wait
# is bounded and prints the components' logs when it runs out.
#
# Traffic stays on 127.0.0.1 and the cluster's own addresses: every component listens on 127.0.0.1
# (the DNS on the pod bridge's gateway address), and pods get no route beyond the pod and service
# ranges, no masquerading, and a DNS that forwards nothing.
# Settings (environment): NEXA_KUBE_STATE (default /var/lib/nexa-kube), NEXA_KUBE_LOGS (default
# /var/log/nexa-kube), KUBE_SOURCE_VERSION and KUBE_CACHE (see binaries.sh).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
STATE=${NEXA_KUBE_STATE:-/var/lib/nexa-kube}
LOGS=${NEXA_KUBE_LOGS:-/var/log/nexa-kube}
PKI="$STATE/pki"
PIDS="$STATE/pids"
# Networks: pods on one bridge, Services in a small range of their own. Chosen off Docker's
# 172.17.0.0/16; `up` refuses to start if the machine already routes either range.
POD_CIDR=10.244.0.0/24
GATEWAY=10.244.0.1
SERVICE_CIDR=10.96.0.0/24
API_SERVICE_IP=10.96.0.1
BRIDGE=nexa-kube0
DOMAIN=cluster.local
API=https://127.0.0.1:6443
# Started in this order, stopped in the reverse one.
COMPONENTS=(etcd kube-apiserver dns kube-controller-manager kube-scheduler kubelet kube-proxy)
PORTS=(2379 2380 6443 10248 10250 10256 10257 10259)
PAUSE_IMAGE=nexa-kube/pause:3.4
# A comment on our own iptables rule, so `down` finds exactly it.
RULE_TAG=nexa-kube-pod-bridge
WAIT_S=${NEXA_KUBE_WAIT_S:-120}

log() { printf '[kube %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
need_root() { [ "$(id -u)" = 0 ] || die "run as root (it starts system components and changes the network)"; }

# --- processes ------------------------------------------------------------------------------------
pid_of() { cat "$PIDS/$1" 2>/dev/null || true; }

# Alive, and still the process we started (a PID may be reused after a crash or a reboot).
alive() {
    local pid
    pid=$(pid_of "$1")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(binary_of "$1")"
}

binary_of() { if [ "$1" = dns ]; then echo dns.py; else echo "$1"; fi; }

# setsid: the components outlive the CI step or shell that started them (`down` stops them).
start() {
    local name=$1
    shift
    setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$name"
    log "started $name (pid $!)"
}

stop() {
    local name=$1 pid
    pid=$(pid_of "$name")
    if [ -n "$pid" ] && alive "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            alive "$name" || break
            sleep 0.2
        done
        if alive "$name"; then
            log "$name (pid $pid) ignored SIGTERM for 20 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$PIDS/$name"
}

show_logs() {
    local lines=${1:-40} name
    for name in "${COMPONENTS[@]}"; do
        [ -f "$LOGS/$name.log" ] || continue
        printf '\n===== %s (last %s lines of %s) =====\n' "$name" "$lines" "$LOGS/$name.log" >&2
        tail -n "$lines" "$LOGS/$name.log" >&2
    done
}

# wait_for WHAT COMMAND...: poll (bounded by WAIT_S) until COMMAND succeeds; on timeout show the logs.
wait_for() {
    local what=$1 started=$SECONDS
    shift
    while ! "$@" >/dev/null 2>&1; do
        for name in "${COMPONENTS[@]}"; do
            if [ -f "$PIDS/$name" ] && ! alive "$name"; then
                show_logs 60
                die "$name exited while waiting for $what"
            fi
        done
        if ((SECONDS - started > WAIT_S)); then
            show_logs 60
            die "$what: not within ${WAIT_S} s"
        fi
        sleep 0.5
    done
    log "$what ($((SECONDS - started)) s)"
}

kubectl_() { "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

# --- prepare --------------------------------------------------------------------------------------
prepare() {
    need_root
    local missing=() tool
    for tool in etcd:etcd-server iptables:iptables conntrack:conntrack socat:socat nsenter:util-linux \
        openssl:openssl curl:curl; do
        command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
    done
    [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} with apt"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    docker info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/prepare-docker-host.sh first"
    BIN="$("$HERE/binaries.sh")/bin"
    # The pod sandbox image, from the same tree's pause.c: no registry is reachable to pull one.
    if ! docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
        local context
        context=$(mktemp -d)
        cp "$BIN/pause" "$context/pause"
        printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$context/Dockerfile"
        docker build -q -t "$PAUSE_IMAGE" "$context" >/dev/null
        rm -rf "$context"
        log "built $PAUSE_IMAGE"
    fi
}

# --- certificates and kubeconfigs ------------------------------------------------------------------
# cert NAME SUBJECT USAGE [SANS]: an ECDSA key and a certificate signed by the cluster's CA.
cert() {
    local name=$1 subject=$2 usage=$3 sans=${4:-}
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$PKI/$name.key" \
        -out "$PKI/$name.csr" -subj "$subject" 2>/dev/null
    {
        echo "extendedKeyUsage=$usage"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        [ -z "$sans" ] || echo "subjectAltName=$sans"
    } >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 30 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

kubeconfig() {
    local name=$1
    cat >"$STATE/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: nexa-kube
    cluster: {server: "$API", certificate-authority: "$PKI/ca.crt"}
users:
  - name: $name
    user: {client-certificate: "$PKI/$name.crt", client-key: "$PKI/$name.key"}
contexts:
  - name: nexa-kube
    context: {cluster: nexa-kube, user: $name}
current-context: nexa-kube
EOF
}

make_pki() {
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$PKI/ca.key" \
        -out "$PKI/ca.crt" -days 30 -subj /CN=nexa-kube-ca 2>/dev/null
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    cert kube-apiserver /CN=kube-apiserver serverAuth \
        "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$DOMAIN,IP:127.0.0.1,IP:$API_SERVICE_IP"
    cert kubelet-server /CN=localhost serverAuth "DNS:localhost,IP:127.0.0.1"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
    # Identities the bootstrap RBAC policy already grants what each component needs.
    cert admin "/O=system:masters/CN=nexa-kube-admin" clientAuth
    cert kube-controller-manager /CN=system:kube-controller-manager clientAuth
    cert kube-scheduler /CN=system:kube-scheduler clientAuth
    cert kubelet "/O=system:nodes/CN=system:node:localhost" clientAuth
    cert kube-proxy /CN=system:kube-proxy clientAuth
    cert dns /CN=nexa-kube-dns clientAuth # bound to the system:kube-dns role once the API is up
    local name
    for name in admin kube-controller-manager kube-scheduler kubelet kube-proxy; do kubeconfig "$name"; done
}

# --- network --------------------------------------------------------------------------------------
# remember KEY...: note a sysctl's value before we (or a component) change it; `down` restores it.
remember() {
    local key file
    for key in "$@"; do
        file="/proc/sys/${key//.//}"
        [ -r "$file" ] || continue
        grep -q "^$key=" "$STATE/sysctls" 2>/dev/null || echo "$key=$(cat "$file")" >>"$STATE/sysctls"
    done
}

sysctl_set() {
    local key=$1 value=$2 file
    file="/proc/sys/${key//.//}"
    [ -w "$file" ] || die "cannot set $key (no $file)"
    remember "$key"
    echo "$value" >"$file"
}

# Folders the kubelet writes outside $STATE whatever its flags say (container log links, libcni's
# cache): made here when missing and noted, so that `down` removes exactly those.
own_dirs() {
    local dir
    for dir in "$@"; do
        if [ ! -e "$dir" ]; then
            mkdir -p "$dir"
            echo "$dir" >>"$STATE/created-dirs"
        fi
    done
}

setup_network() {
    local range
    for range in "$POD_CIDR" "$SERVICE_CIDR"; do
        if ip route show | grep -v " dev $BRIDGE " | grep -q "^${range%.*}"; then
            die "this machine already routes $range: choose other ranges in $0"
        fi
    done
    # Bridged pod traffic must pass iptables (Service DNAT replies), and the host forwards it.
    [ -d /proc/sys/net/bridge ] || modprobe br_netfilter 2>/dev/null || true
    sysctl_set net.ipv4.ip_forward 1
    sysctl_set net.bridge.bridge-nf-call-iptables 1
    # The bridge exists before the first pod so that the DNS can listen on its address; the CNI
    # bridge plugin adopts it.
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    ip addr replace "$GATEWAY/${POD_CIDR#*/}" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    # Docker's FORWARD policy is DROP and kube-proxy accepts only its own marked traffic: let the
    # pods (and Service traffic DNATed to them) through within the bridge, nothing else.
    iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$RULE_TAG" -j ACCEPT 2>/dev/null ||
        iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$RULE_TAG" -j ACCEPT
    mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam"
    # No default route and no masquerading: pods reach the pod and Service ranges only.
    cat >"$STATE/cni/net.d/10-nexa-kube.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "nexa-kube",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GATEWAY"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}],
        "dataDir": "$STATE/cni/ipam"
      }
    }
  ]
}
EOF
}

# --- up -------------------------------------------------------------------------------------------
all_alive() {
    local name
    for name in "${COMPONENTS[@]}"; do alive "$name" || return 1; done
}

api_ready() { kubectl_ get --raw /readyz; }
node_ready() {
    kubectl_ get node localhost -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}
default_service_account() { kubectl_ -n default get serviceaccount default; }

up() {
    need_root
    prepare
    if all_alive && api_ready >/dev/null 2>&1 && node_ready 2>/dev/null; then
        log "already up"
        print_env
        return
    fi
    if [ -d "$STATE" ]; then
        log "half up (some components are not running): taking it down first"
        down
    fi
    local port
    for port in "${PORTS[@]}"; do
        ! ss -Hltn "sport = :$port" | grep -q . || die "port $port is taken (another cluster or etcd?): $(ss -Hltnp "sport = :$port")"
    done
    local started=$SECONDS
    mkdir -p "$STATE" "$PIDS" "$LOGS" "$STATE/kubelet"
    rm -f "$LOGS"/*.log
    own_dirs /var/log/pods /var/log/containers /var/lib/cni
    make_pki
    setup_network

    start etcd etcd --name nexa-kube --data-dir "$STATE/etcd" \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster nexa-kube=http://127.0.0.1:2380
    wait_for "etcd healthy" curl -fsS http://127.0.0.1:2379/health

    # --advertise-address 127.0.0.1 with no endpoint reconciler: nothing in the pods calls the API
    # (the chart mounts no token), and the `kubernetes` Service must not point off this machine.
    start kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
        --bind-address=127.0.0.1 --secure-port=6443 --insecure-port=0 --advertise-address=127.0.0.1 \
        --endpoint-reconciler-type=none --service-cluster-ip-range="$SERVICE_CIDR" \
        --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/kube-apiserver.crt" \
        --tls-private-key-file="$PKI/kube-apiserver.key" \
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$PKI/apiserver-kubelet-client.key" --kubelet-certificate-authority="$PKI/ca.crt" \
        --kubelet-preferred-address-types=Hostname \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --service-account-issuer="https://kubernetes.default.svc.$DOMAIN" \
        --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --profiling=false
    wait_for "kube-apiserver ready" api_ready

    kubectl_ create clusterrolebinding nexa-kube-dns --clusterrole=system:kube-dns --user=nexa-kube-dns >/dev/null
    start dns python3 "$HERE/dns.py" --listen "$GATEWAY" --api "$API" --ca "$PKI/ca.crt" \
        --cert "$PKI/dns.crt" --key "$PKI/dns.key" --domain "$DOMAIN"

    start kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
        --authentication-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
        --authorization-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port=10257 --port=0 --leader-elect=false \
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
        --use-service-account-credentials=true --profiling=false
    start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$STATE/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig="$STATE/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig="$STATE/kube-scheduler.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port=10259 --port=0 --leader-elect=false --profiling=false

    # Image GC off: the images come from local builds and could not be pulled back. oomScoreAdj 0:
    # the sandbox may not lower it (see binaries.sh). Eviction thresholds low: a CI disk at 85 %
    # must not evict the pods under test.
    cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDomain: $DOMAIN
clusterDNS: [$GATEWAY]
cgroupDriver: cgroupfs
failSwapOn: false
oomScoreAdj: 0
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
serializeImagePulls: false
EOF
    # The kubelet sets these kernel tunables itself (vm.overcommit_memory, kernel.panic, ...).
    remember vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
        kernel.keys.root_maxkeys kernel.keys.root_maxbytes
    start kubelet "$BIN/kubelet" --config="$STATE/kubelet.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
        --hostname-override=localhost --root-dir="$STATE/kubelet" --cert-dir="$STATE/kubelet/pki" \
        --container-runtime=docker --experimental-dockershim-root-directory="$STATE/dockershim" \
        --pod-infra-container-image="$PAUSE_IMAGE" --network-plugin=cni \
        --cni-conf-dir="$STATE/cni/net.d" --cni-bin-dir=/usr/lib/cni

    cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
hostnameOverride: localhost
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: $POD_CIDR
mode: iptables
oomScoreAdj: 0
conntrack: {maxPerCore: 0}
nodePortAddresses: [127.0.0.0/8]
EOF
    remember net.ipv4.conf.all.route_localnet # kube-proxy sets it to 1
    start kube-proxy "$BIN/kube-proxy" --config="$STATE/kube-proxy.yaml"

    wait_for "node Ready" node_ready
    wait_for "the default service account" default_service_account
    wait_for "kube-proxy healthy" curl -fsS http://127.0.0.1:10256/healthz
    log "up in $((SECONDS - started)) s"
    print_env
}

print_env() {
    echo "export KUBECONFIG=$STATE/admin.kubeconfig"
    echo "export PATH=$BIN:\$PATH"
}

# --- down -----------------------------------------------------------------------------------------
down() {
    need_root
    local started=$SECONDS i chains chain
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop "${COMPONENTS[i]}"; done
    # dockershim's containers outlive the kubelet: remove every pod sandbox and container it made.
    if docker info >/dev/null 2>&1; then
        local containers
        containers=$(docker ps -aq --filter label=io.kubernetes.docker.type)
        if [ -n "$containers" ]; then
            # shellcheck disable=SC2086  # a list of IDs
            docker rm -f $containers >/dev/null
            log "removed $(echo "$containers" | wc -w) pod containers"
        fi
    fi
    # Volumes the kubelet mounted (Secrets are tmpfs), deepest first.
    if [ -d "$STATE" ]; then
        findmnt -rn -o TARGET | { grep "^$STATE/" || true; } | sort -r | while read -r mount; do
            umount "$mount" 2>/dev/null || umount -l "$mount"
        done
    fi
    # iptables: the rules that jump to kube-proxy's and the kubelet's KUBE-* chains, then the chains,
    # then our own rule. Nothing else on the machine is touched.
    local family table
    for family in iptables ip6tables; do
        command -v "$family" >/dev/null || continue
        for table in filter nat mangle; do
            "$family-save" -t "$table" 2>/dev/null | { grep -E '^-A [A-Z]+ .*-j KUBE-' || true; } |
                sed 's/^-A /-D /' | while read -r rule; do
                # a rule as iptables-save wrote it, quoted comments included
                eval "$family" -t "$table" "$rule" || log "could not remove ($family -t $table) $rule"
            done
            chains=$("$family-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p')
            for chain in $chains; do "$family" -t "$table" -F "$chain"; done
            for chain in $chains; do "$family" -t "$table" -X "$chain"; done
        done
    done
    while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$RULE_TAG" -j ACCEPT 2>/dev/null; do :; done
    if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE"; fi
    if [ -f "$STATE/created-dirs" ]; then
        while read -r dir; do rm -rf "$dir"; done <"$STATE/created-dirs"
    fi
    if [ -f "$STATE/sysctls" ]; then
        while IFS='=' read -r key value; do echo "$value" >"/proc/sys/${key//.//}"; done <"$STATE/sysctls"
    fi
    rm -rf "$STATE"
    log "down in $((SECONDS - started)) s (logs kept in $LOGS)"
}

# --- status ---------------------------------------------------------------------------------------
status() {
    local name pid rss ok=0
    for name in "${COMPONENTS[@]}"; do
        pid=$(pid_of "$name")
        if alive "$name"; then
            rss=$(awk '/^VmRSS/ {printf "%d MiB", $2 / 1024}' "/proc/$pid/status")
            printf '%-24s running  pid %-8s rss %s\n' "$name" "$pid" "$rss"
        else
            printf '%-24s stopped\n' "$name"
            ok=1
        fi
    done
    return $ok
}

case "${1:-}" in
    prepare) prepare ;;
    up) up ;;
    down) down ;;
    status) status ;;
    logs) show_logs "${2:-40}" ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
