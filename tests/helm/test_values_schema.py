"""values.schema.json accepts the chart's own value sets and rejects bad values before anything renders."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
from chart_helpers import NAMESPACE, RELEASE, VALUE_SETS

BAD_VALUES = [
    pytest.param({"text": {"replicaCount": "two"}}, "/text/replicaCount", id="replicas-not-a-number"),
    pytest.param({"text": {"replicas": 3}}, "replicas", id="misspelt-key"),
    pytest.param({"image": {"gpu": {"enabled": True, "count": 0}}}, "/image/gpu/count", id="zero-gpus"),
    pytest.param({"audio": {"port": 70000}}, "/audio/port", id="port-out-of-range"),
    pytest.param({"modelCache": {"type": "hostPath"}}, "/modelCache/type", id="unknown-cache-type"),
    pytest.param({"apiKeys": {"keys": ["one,two"]}}, "/apiKeys/keys/0", id="comma-inside-a-key"),
    pytest.param({"text": {"autoscaling": {"minReplicas": 0}}}, "/text/autoscaling/minReplicas", id="hpa-min-zero"),
    pytest.param({"router": {"service": {"type": "ExternalName"}}}, "/router/service/type", id="service-type"),
    pytest.param({"text": {"env": {"BAD NAME": "x"}}}, "BAD NAME", id="env-name"),
]


def test_every_value_set_is_accepted(chart: helm.Chart, value_set: str) -> None:
    chart.validate_schema(VALUE_SETS[value_set])


@pytest.mark.parametrize(("values", "where"), BAD_VALUES)
def test_bad_values_are_rejected(chart: helm.Chart, values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as excinfo:
        chart.validate_schema(values)
    assert where in str(excinfo.value)  # the message names the offending value
    # `helm install` refuses them too: nothing is rendered from values the schema rejects.
    with pytest.raises(helm.HelmValuesError):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
