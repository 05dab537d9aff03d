"""The RabbitMQ-configuration incident: a deployment without RABBITMQ_* settings.

Prescribed: the service refuses to start and names the missing variable (instead of running on
hard-coded defaults that process nothing), and the running system stays healthy: its orders,
placed before and after the bad deployment, are judged by the ledger like any other.
"""

import pytest
from conftest import ledger_verdict

from harness.guards import expect
from scenarios.shop import first_response

SERVICES = ("api_gateway", "inventory_service")
# Every variable the broker settings need (services/shop/config.py: REQUIRED).
VARIABLES = ("RABBITMQ_HOST", "RABBITMQ_PORT", "RABBITMQ_USER", "RABBITMQ_PASS")
CASES = [(service, variable) for service in SERVICES for variable in VARIABLES]


@pytest.mark.chaos(root_cause="rabbitmq_config_missing",
                   guards={"refuse_to_start": "config_validation", "env_checked": "check_env"},
                   protects={"refuse_to_start": "config_validation"}, preconditions=("env_checked",))
@pytest.mark.parametrize(("service", "variable"), CASES, ids=[f"{s}-{v}" for s, v in CASES])
def test_rabbitmq_config_missing(stack, chaos, shop, service, variable, history, scenario_record, steady, evidence):
    steady("before")
    with chaos.inject("config.missing_env", target=service, variable=variable) as fault:
        status, code, output = fault.outcome(settle_s=10)
        # The incident's first response: read RABBITMQ_* of the deployment that refused to start.
        env = fault.replica.attrs["Config"]["Env"] or []
    steady("after")
    scenario_record.update(outcome=(status, code))

    expect("refuse_to_start", status == "exited" and code not in (None, 0),
           f"{service} without {variable} kept running ({status}) on defaults")
    expect("refuse_to_start", f"{variable} is not set" in output,
           f"the error does not name {variable}: {output[-300:]}")
    rabbitmq = sorted(entry.split("=", 1)[0] for entry in env if entry.startswith("RABBITMQ_"))
    first_response.performed(scenario_record, "check_env", f"read the RABBITMQ_* settings of {service}'s deployment",
                             f"set: {', '.join(rabbitmq) or 'none'}")
    gap = first_response.env_gap(env, variable, output)
    expect("env_checked", gap is None, f"the deployment's settings do not confirm the refusal: {gap}")
    ledger_verdict(evidence, history)
