"""Prometheus metrics and the access log, kept per app (no module-level registry), plus `/metrics`."""

from __future__ import annotations

import logging
import time
import uuid

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logs import request_id_var

access_log = logging.getLogger("nexa.access")

REQUEST_ID_HEADER = "x-request-id"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class HttpMetrics:
    """Per-route request counts, latencies and in-flight requests of one app."""

    def __init__(self, registry: CollectorRegistry, component: str) -> None:
        self.component = component
        self.requests = Counter(
            "nexa_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=registry
        )
        self.latency = Histogram(
            "nexa_http_request_duration_seconds",
            "Time from request to the end of the response",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge("nexa_http_in_flight_requests", "Requests being served", registry=registry)


def _route_of(scope: Scope) -> str:
    # The matched route template keeps label cardinality bounded (no raw paths with IDs in them).
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _valid_request_id(value: str) -> bool:
    return 0 < len(value) <= 128 and all(c.isalnum() or c in "-_.:" for c in value)


class ObservabilityMiddleware:
    """Request ID (taken from `X-Request-ID` or generated, echoed back), metrics and one access-log line.

    Pure ASGI rather than BaseHTTPMiddleware, so streamed bodies pass through untouched.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _valid_request_id(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID_HEADER.encode()]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            route = _route_of(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(elapsed)
            fields = {
                "method": method,
                "route": route,
                "path": scope.get("path"),
                "status": status,
                "latency_ms": round(elapsed * 1000, 2),
            }
            fields.update(scope["state"].get("log_fields", {}))
            access_log.info("request", extra={"fields": fields})
            request_id_var.reset(token)


def metrics_endpoint(registry: CollectorRegistry):  # type: ignore[no-untyped-def]
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
