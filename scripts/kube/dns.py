"""Cluster DNS for the CI cluster (scripts/kube/cluster.sh): answers `<service>.<namespace>.svc.<domain>`
from the API server's Services and Endpoints, the way CoreDNS's kubernetes plugin does.

No CoreDNS is packaged anywhere the CI machines can reach, and dnsmasq would still need a process
turning the API's Services into a hosts file and reloading it; this one process reads the API and
answers, with the standard library only. It serves A records for ClusterIP Services (a headless
Service's ready endpoint addresses instead) and for `<a-b-c-d>.<namespace>.pod.<domain>`, NODATA for
other record types of those names, NXDOMAIN for other names in the cluster domain, and REFUSED for
anything else: it never forwards a query, so pods reach nothing outside the cluster by name.

usage: python3 dns.py --listen IP --api https://127.0.0.1:6443 --ca CA --cert CERT --key KEY [--domain D]
Runs until SIGTERM/SIGINT; reads the API every --interval seconds (and logs each change of the table).
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import signal
import socketserver
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

TYPE_A, TYPE_ANY, CLASS_IN = 1, 255, 1
NOERROR, FORMERR, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 3, 4, 5
TTL_S = 5  # short: pods must see a recreated Service's new address quickly


@dataclass
class Table:
    """Names (lower case, no trailing dot) to IPv4 addresses; replaced whole on every API read."""

    domain: str
    records: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def replace(self, records: dict[str, list[str]]) -> bool:
        with self.lock:
            changed = records != self.records
            self.records = records
        return changed

    def lookup(self, name: str) -> tuple[int, list[str]]:
        """(rcode, addresses) for a query name."""
        if not (name == self.domain or name.endswith("." + self.domain)):
            return REFUSED, []
        pod = self._pod_address(name)
        if pod:
            return NOERROR, [pod]
        with self.lock:
            found = self.records.get(name)
        return (NOERROR, found) if found is not None else (NXDOMAIN, [])

    def _pod_address(self, name: str) -> str | None:
        # 10-244-0-5.<namespace>.pod.<domain> -> 10.244.0.5, as CoreDNS answers (`pods insecure`).
        labels = name[: -len(self.domain) - 1].split(".")
        if len(labels) == 3 and labels[2] == "pod":
            try:
                return str(ipaddress.IPv4Address(labels[0].replace("-", ".")))
            except ValueError:
                return None
        return None


class Api:
    """GETs against the API server with the client certificate, on one kept-alive connection."""

    def __init__(self, url: str, ca: str, cert: str, key: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6443
        self.context = ssl.create_default_context(cafile=ca)
        self.context.load_cert_chain(cert, key)
        self.connection: http.client.HTTPSConnection | None = None

    def get(self, path: str) -> Any:
        for attempt in (1, 2):  # once more on a fresh connection if the kept-alive one was closed
            if self.connection is None:
                self.connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=10)
            try:
                self.connection.request("GET", path)
                response = self.connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise OSError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
            return json.loads(body)
        raise AssertionError("unreachable")


def records_from(services: dict[str, Any], endpoints: dict[str, Any], domain: str) -> dict[str, list[str]]:
    ready: dict[tuple[str, str], list[str]] = {}
    for item in endpoints.get("items", []):
        meta = item["metadata"]
        addresses = [a["ip"] for subset in item.get("subsets") or [] for a in subset.get("addresses") or []]
        ready[(meta["namespace"], meta["name"])] = sorted(set(addresses))
    records: dict[str, list[str]] = {}
    for item in services.get("items", []):
        meta, spec = item["metadata"], item.get("spec", {})
        name = f"{meta['name']}.{meta['namespace']}.svc.{domain}".lower()
        cluster_ip = spec.get("clusterIP")
        if spec.get("type") == "ExternalName":
            continue  # a CNAME out of the cluster: not answered (nothing here may leave it)
        if cluster_ip and cluster_ip != "None":
            records[name] = [cluster_ip]
        else:
            records[name] = ready.get((meta["namespace"], meta["name"]), [])
    return records


def refresh_forever(api: Api, table: Table, interval_s: float, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            records = records_from(api.get("/api/v1/services"), api.get("/api/v1/endpoints"), table.domain)
            if table.replace(records):
                log(
                    f"{len(records)} service names: "
                    + ", ".join(f"{n}={','.join(a)}" for n, a in sorted(records.items()))
                )
        except (OSError, ValueError, KeyError) as exc:
            log(f"reading the API failed (keeping the last table): {type(exc).__name__}: {exc}")
        stop.wait(interval_s)


def answer(query: bytes, table: Table) -> bytes | None:
    """The response to one DNS message (RFC 1035), or None when it is not worth answering."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack(">HHH", query[:6])
    if flags & 0x8000:
        return None  # a response, not a query
    opcode = (flags >> 11) & 0xF
    rd = flags & 0x0100
    labels: list[str] = []
    offset = 12
    try:
        if qdcount != 1 or opcode != 0:
            raise NotImplementedError
        while True:
            length = query[offset]
            offset += 1
            if length == 0:
                break
            if length > 63:
                raise ValueError("compressed or bad label in a question")
            labels.append(query[offset : offset + length].decode("ascii"))
            offset += length
        qtype, qclass = struct.unpack(">HH", query[offset : offset + 4])
        offset += 4
    except NotImplementedError:
        return struct.pack(">HHHHHH", ident, 0x8000 | (opcode << 11) | rd | NOTIMP, 0, 0, 0, 0)
    except (IndexError, ValueError, UnicodeDecodeError, struct.error):
        return struct.pack(">HHHHHH", ident, 0x8000 | rd | FORMERR, 0, 0, 0, 0)
    question = query[12:offset]
    rcode, addresses = table.lookup(".".join(labels).lower())
    if qclass != CLASS_IN or qtype not in (TYPE_A, TYPE_ANY):
        addresses = []  # the name's other record types: NODATA (or its NXDOMAIN/REFUSED)
    authoritative = 0x0400 if rcode != REFUSED else 0
    header = struct.pack(">HHHHHH", ident, 0x8000 | authoritative | rd | rcode, 1, len(addresses), 0, 0)
    # Each answer names the question's name by a pointer to offset 12.
    answers = b"".join(
        struct.pack(">HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL_S, 4) + ipaddress.IPv4Address(a).packed for a in addresses
    )
    return header + question + answers


def log(message: str) -> None:
    print(f"[dns {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="address to serve on (UDP and TCP port 53)")
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--api", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--domain", default="cluster.local")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    table = Table(args.domain.lower().strip("."))

    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            response = answer(data, table)
            if response:
                sock.sendto(response, self.client_address)

    class Tcp(socketserver.StreamRequestHandler):
        timeout = 10

        def handle(self) -> None:
            for _ in range(100):  # a client may send several queries on one connection; bounded
                prefix = self.rfile.read(2)
                if len(prefix) < 2:
                    return
                response = answer(self.rfile.read(struct.unpack(">H", prefix)[0]), table)
                if response is None:
                    return
                self.wfile.write(struct.pack(">H", len(response)) + response)

    socketserver.ThreadingUDPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    servers: list[socketserver.BaseServer] = [
        socketserver.ThreadingUDPServer((args.listen, args.port), Udp),
        socketserver.ThreadingTCPServer((args.listen, args.port), Tcp),
    ]
    stop = threading.Event()
    api = Api(args.api, args.ca, args.cert, args.key)
    threads = [threading.Thread(target=refresh_forever, args=(api, table, args.interval, stop), daemon=True)]
    threads += [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    log(f"serving {table.domain} on {args.listen}:{args.port} (udp, tcp) from {args.api}")

    def shut_down(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
