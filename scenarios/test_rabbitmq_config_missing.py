"""Seed 003: a deployment without RABBITMQ_* settings.

Prescribed: the service refuses to start and names the missing variable (instead of running on
hard-coded defaults that process nothing), and the running system stays healthy.
"""

import pytest
from conftest import steady_state

VARIABLES = ("RABBITMQ_HOST", "RABBITMQ_PASS")


@pytest.mark.chaos(root_cause="rabbitmq_config_missing", runbook=["config_validation", "broker_monitoring"])
@pytest.mark.parametrize("service", ["api_gateway", "inventory_service"])
def test_rabbitmq_config_missing(stack, chaos, shop, service, scenario_record):
    steady_state(shop, "before")
    outcomes = {}
    for variable in VARIABLES:
        with chaos.inject("config.missing_env", target=service, variable=variable) as fault:
            outcomes[variable] = fault.outcome(settle_s=10)
    steady_state(shop, "after")
    scenario_record.update(outcomes={v: (s, c) for v, (s, c, _) in outcomes.items()})

    for variable, (status, code, output) in outcomes.items():
        assert status == "exited" and code not in (None, 0), \
            f"[refuse_to_start] {service} without {variable} kept running ({status}) on defaults"
        assert f"{variable} is not set" in output, f"[names_variable] the error does not name {variable}: {output[-300:]}"
    health = shop.http.get("/health").json()
    assert health["checks"]["broker_connected"], f"[broker_monitoring] the running gateway lost its broker: {health}"
