"""The cluster DNS (scripts/kube/dns.py) answers DNS messages as a resolver expects: A records for
Services and pods, NODATA for other types, NXDOMAIN inside the cluster domain, REFUSED outside it.

These run anywhere (no cluster): the DNS messages are built and read here byte by byte, as RFC 1035
lays them out. In the cluster itself, test_helm_install.py resolves the router's upstreams through
glibc in a pod.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import struct
import sys
from types import ModuleType

import pytest
from kube_helpers import REPO

TYPE_A, TYPE_AAAA = 1, 28


@pytest.fixture(scope="module")
def dns() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nexa_kube_dns", REPO / "scripts" / "kube" / "dns.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def query(name: str, qtype: int = TYPE_A, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    # RD set, one question, class IN.
    return struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", qtype, 1)


def parse(response: bytes) -> tuple[int, int, bool, list[str]]:
    """(id, rcode, authoritative, A addresses) of a response to one question."""
    ident, flags, qdcount, ancount = struct.unpack(">HHHH", response[:8])
    assert flags & 0x8000, "not a response"
    assert qdcount == 1
    offset = response.index(b"\0", 12) + 5  # past the question's name and its type and class
    addresses = []
    for _ in range(ancount):
        pointer, rtype, rclass, _ttl, length = struct.unpack(">HHHIH", response[offset : offset + 12])
        assert pointer == 0xC00C and (rtype, rclass, length) == (TYPE_A, 1, 4)
        addresses.append(str(ipaddress.IPv4Address(response[offset + 12 : offset + 16])))
        offset += 16
    assert offset == len(response)
    return ident, flags & 0xF, bool(flags & 0x0400), addresses


@pytest.fixture(scope="module")
def table(dns: ModuleType) -> object:
    services = {
        "items": [
            {"metadata": {"name": "nexa-text", "namespace": "ci"}, "spec": {"clusterIP": "10.96.0.20"}},
            {"metadata": {"name": "headless", "namespace": "ci"}, "spec": {"clusterIP": "None"}},
            {"metadata": {"name": "out", "namespace": "ci"}, "spec": {"type": "ExternalName"}},
        ]
    }
    endpoints = {
        "items": [
            {
                "metadata": {"name": "headless", "namespace": "ci"},
                "subsets": [{"addresses": [{"ip": "10.244.0.7"}, {"ip": "10.244.0.5"}]}],
            }
        ]
    }
    table = dns.Table("cluster.local")
    assert table.replace(dns.records_from(services, endpoints, "cluster.local"))
    return table


def test_a_service_name_gets_its_cluster_ip(dns: ModuleType, table: object) -> None:
    assert parse(dns.answer(query("nexa-text.ci.svc.cluster.local"), table)) == (0x1234, 0, True, ["10.96.0.20"])
    # Names are case-insensitive; the answer echoes the question as asked.
    response = dns.answer(query("Nexa-Text.CI.svc.cluster.local", ident=7), table)
    assert parse(response)[1:] == (0, True, ["10.96.0.20"])
    assert b"Nexa-Text" in response


def test_a_headless_service_gets_its_ready_endpoints_and_a_pod_name_its_address(dns: ModuleType, table: object) -> None:
    assert parse(dns.answer(query("headless.ci.svc.cluster.local"), table))[3] == ["10.244.0.5", "10.244.0.7"]
    assert parse(dns.answer(query("10-244-0-9.ci.pod.cluster.local"), table))[3] == ["10.244.0.9"]


def test_other_types_are_nodata_unknown_names_nxdomain_and_the_rest_refused(dns: ModuleType, table: object) -> None:
    assert parse(dns.answer(query("nexa-text.ci.svc.cluster.local", TYPE_AAAA), table))[1:] == (0, True, [])
    # glibc tries the search path first: each miss must be a quick NXDOMAIN.
    assert parse(dns.answer(query("pypi.org.ci.svc.cluster.local"), table))[1:] == (3, True, [])
    assert parse(dns.answer(query("out.ci.svc.cluster.local"), table))[1] == 3
    # Nothing is forwarded: names outside the cluster are refused.
    assert parse(dns.answer(query("pypi.org"), table))[1:] == (5, False, [])


def test_malformed_messages_get_an_error_or_no_answer(dns: ModuleType, table: object) -> None:
    assert dns.answer(b"\x12\x34", table) is None
    bad_label = struct.pack(">HHHHHH", 9, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack(">HH", 1, 1)
    assert parse_header(dns.answer(bad_label, table)) == (9, 1)  # FORMERR
    truncated = query("nexa-text.ci.svc.cluster.local")[:-3]
    assert parse_header(dns.answer(truncated, table)) == (0x1234, 1)
    two_questions = bytearray(query("a.cluster.local"))
    two_questions[4:6] = struct.pack(">H", 2)
    assert parse_header(dns.answer(bytes(two_questions), table)) == (0x1234, 4)  # NOTIMP
    response = bytearray(query("a.cluster.local"))
    response[2] |= 0x80
    assert dns.answer(bytes(response), table) is None


def parse_header(response: bytes) -> tuple[int, int]:
    ident, flags = struct.unpack(">HH", response[:4])
    return ident, flags & 0xF
