"""The shop's protection table and its switches, as the services and the harness read them."""

import re
from pathlib import Path

import pytest

from harness import protections
from harness.errors import HarnessError

SERVICES = Path(__file__).resolve().parents[2] / "services" / "shop"
shop_table = protections._table_module()


def test_every_check_in_the_shop_names_a_protection_of_the_table():
    used = {name for path in SERVICES.glob("*.py")
            for name in re.findall(r'\bon\("([a-z_]+)"\)', path.read_text())}
    assert used <= set(protections.table()), used - set(protections.table())


def test_every_protection_of_the_table_is_checked_somewhere():
    used = {name for path in SERVICES.glob("*.py") for name in re.findall(r'\bon\("([a-z_]+)"\)', path.read_text())}
    assert set(protections.table()) <= used, set(protections.table()) - used


def test_no_service_asks_for_the_mode_any_more():
    offenders = [p.name for p in SERVICES.glob("*.py") if "RESILIENT" in p.read_text()]
    assert not offenders


def test_fragile_is_every_protection_off():
    switches = shop_table.from_env({"SUT_MODE": "fragile"})
    assert not any(switches.on(name) for name in protections.table())


def test_sut_disable_turns_off_only_what_it_names():
    switches = shop_table.from_env({"SUT_DISABLE": "retry, breaker"})
    assert [name for name in protections.table() if not switches.on(name)] == ["retry", "breaker"]


def test_an_unknown_name_at_start_stops_the_service_naming_it(capsys):
    with pytest.raises(SystemExit) as stopped:
        shop_table.from_env({"SUT_DISABLE": "retry,brakes"})
    assert stopped.value.code == shop_table.EXIT_CONFIG
    assert "unknown protection 'brakes'" in capsys.readouterr().err


def test_a_run_time_switch_sets_exactly_what_it_names_and_keeps_what_started_off():
    switches = shop_table.Switches(["leeway"])
    switches.set(["dlq"])
    assert not switches.on("dlq") and switches.on("leeway")
    assert switches.at_start == {"leeway"}
    with pytest.raises(ValueError, match="brakes"):
        switches.set(["brakes"])
    with pytest.raises(KeyError):
        switches.on("brakes")


def test_the_harness_reads_names_from_the_command_line_in_one_or_many_flags():
    assert protections.checked(["retry,backoff", "dlq", "retry"]) == ("retry", "backoff", "dlq")
    with pytest.raises(HarnessError, match="unknown protection 'brakes'"):
        protections.checked(["retry", "brakes"])


def test_the_services_with_a_control_endpoint_are_those_that_hold_a_protection():
    assert set(protections.services()) == {"api_gateway", "inventory_service", "auth_service"}
    for service in protections.services():
        assert "protections_router" in (SERVICES / f"{service}.py").read_text()
