"""One pooled HTTP client per configured service, opened and closed with the app."""

from __future__ import annotations

from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
from prometheus_client import Counter, Gauge

from nexa_common.errors import APIError
from nexa_common.modalities import Modality, spec

from .metrics import RouterMetrics
from .settings import Settings


@dataclass
class Upstream:
    modality: Modality
    url: str
    client: httpx.AsyncClient
    transport: httpx.AsyncHTTPTransport
    """The client's own connection pool, which the hot path calls directly (see `proxy.forward`)."""
    in_flight: Gauge
    metrics: RouterMetrics

    def error_counter(self, kind: str) -> Counter:
        return self.metrics.upstream_errors.labels(self.modality.value, kind)


def open_upstreams(settings: Settings, metrics: RouterMetrics) -> dict[Modality, Upstream]:
    """A client per configured service; created once, so connections are pooled and kept alive."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout_s,
        read=settings.read_timeout_s,
        write=settings.read_timeout_s,
        pool=settings.pool_timeout_s,
    )
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
        keepalive_expiry=settings.keepalive_expiry_s,
    )
    upstreams = {}
    for modality, url in settings.upstream_urls().items():
        transport = httpx.AsyncHTTPTransport(limits=limits)
        client = httpx.AsyncClient(
            base_url=url,
            timeout=timeout,
            transport=transport,
            # A proxy variable meant for the internet must not capture service traffic.
            trust_env=False,
            # The client is shared by every caller: a cookie one caller's answer sets must not be
            # sent along with another's requests.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )
        upstreams[modality] = Upstream(
            modality=modality,
            url=url,
            client=client,
            transport=transport,
            in_flight=metrics.upstream_in_flight.labels(modality.value),
            metrics=metrics,
        )
    return upstreams


async def close_upstreams(upstreams: dict[Modality, Upstream]) -> None:
    for upstream in upstreams.values():
        await upstream.client.aclose()


def not_configured(modality: Modality, path: str) -> APIError:
    row = spec(modality)
    return APIError(
        503,
        f"No {row.name} service is configured, so {path} cannot be served. Serve {row.article} {row.name} model, "
        f"e.g. `nexa server {row.default_model}`, or point {row.router_url_env} at a running {row.name} service.",
        code="modality_not_configured",
    )


def unreachable(modality: Modality) -> APIError:
    # No address in the message: it is internal to the deployment.
    return APIError(
        503,
        f"The {modality.value} service is not reachable (stopped or still starting); retry shortly. "
        f"It serves {modality.value} models such as `nexa server {spec(modality).default_model}`.",
        code="upstream_unavailable",
        headers={"Retry-After": "2"},
    )


def busy(modality: Modality) -> APIError:
    return APIError(
        503,
        f"All connections to the {modality.value} service are busy; retry shortly.",
        code="upstream_busy",
        headers={"Retry-After": "2"},
    )


def timed_out(modality: Modality) -> APIError:
    return APIError(
        504,
        f"The {modality.value} service did not answer in time (NEXA_ROUTER_READ_TIMEOUT_S).",
        code="upstream_timeout",
    )


def disconnected(modality: Modality) -> APIError:
    return APIError(
        502, f"The {modality.value} service closed the connection without answering.", code="upstream_disconnected"
    )
