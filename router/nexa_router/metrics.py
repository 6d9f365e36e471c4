"""The router's own metrics, beside the per-route counts and latencies every component has."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.upstream_errors = Counter(
            "nexa_router_upstream_errors",
            "Failed exchanges with a service: unreachable, timeout, dropped mid-response, a 5xx answer, or "
            "resent (a pooled connection closed unanswered)",
            ["upstream", "kind"],
            registry=registry,
        )
        self.upstream_in_flight = Gauge(
            "nexa_router_upstream_in_flight_requests",
            "Requests forwarded to a service and not finished yet (streams included)",
            ["upstream"],
            registry=registry,
        )
