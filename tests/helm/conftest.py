"""Render the Helm chart with the real Helm engine and hand the manifests to the tests as dicts.

helm-python-sdk embeds Helm's own Go SDK (no helm binary, no cluster): what it renders is what
`helm install` would send to the API server. Each value set is rendered once per session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import helm_python as helm
import pytest
import yaml
from chart_helpers import CHART, NAMESPACE, RELEASE, VALUE_SETS, Rendered


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: helm.Chart) -> Callable[[dict[str, Any]], Rendered]:
    """render(values) -> Rendered, through the Helm engine, as `helm install demo -n nexa-test` would."""
    cache: dict[str, Rendered] = {}

    def _render(values: dict[str, Any]) -> Rendered:
        key = yaml.safe_dump(values, sort_keys=True)
        if key not in cache:
            cache[key] = Rendered(chart.render(values, name=RELEASE, namespace=NAMESPACE))
        return cache[key]

    return _render


@pytest.fixture(scope="session", params=sorted(VALUE_SETS))
def value_set(request: pytest.FixtureRequest) -> str:
    return str(request.param)
