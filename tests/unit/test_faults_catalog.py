import argparse
import json

import pytest

from harness.cli import cmd_faults
from harness.errors import HarnessError
from harness.faults import CATALOG, Chaos, describe
from harness.faults.base import UNSTATED, Fault, FaultJournal, Params
from harness.faults.http import VendorStatus


def test_catalog_lists_parameters_with_types_defaults_and_ranges():
    rows = {row["name"]: row for row in describe()}
    status = rows["http.status"]
    assert status["family"] == "http" and status["targets"] == ["payment_gateway", "payment_gateway_b"]
    assert status["params"]["status"]["enum"] == [500, 503, 429]
    assert status["params"]["status"]["default"] == 503
    assert set(CATALOG) == set(rows)


def test_bad_values_and_targets_are_one_line_errors():
    journal = FaultJournal()
    with pytest.raises(HarnessError, match="bad value for status"):
        VendorStatus(None, "payment_gateway", journal, status=418)
    with pytest.raises(HarnessError, match="bad value for duration_s"):
        VendorStatus(None, "payment_gateway", journal, duration_s=-1)
    with pytest.raises(HarnessError, match="can't target 'postgres'"):
        VendorStatus(None, "postgres", journal)
    with pytest.raises(HarnessError, match="unknown fault 'nope'"):
        Chaos(None).fault("nope", "payment_gateway")


def test_a_fault_built_without_a_stack_says_so_when_asked_to_act():
    """Parameters are checked with no stack (above); acting needs one. Catches Fault.stack handing
    back None, which fails later as an AttributeError deep in a family instead of one line."""
    fault = VendorStatus(None, "payment_gateway", FaultJournal())
    with pytest.raises(HarnessError, match="http.status has no stack to act on"):
        fault.stack


def test_journal_windows_pair_inject_with_heal():
    journal = FaultJournal()
    journal.entries = [
        {"ts": 1.0, "action": "inject", "fault": "a", "target": "t"},
        {"ts": 1.1, "action": "landed", "fault": "a", "target": "t"},
        {"ts": 2.0, "action": "inject", "fault": "b", "target": "t"},
        {"ts": 3.0, "action": "heal", "fault": "a", "target": "t"},
    ]
    assert journal.windows() == [("a", 1.0, 3.0), ("b", 2.0, None)]


def test_every_catalog_fault_says_how_inject_proves_its_effect():
    unstated = sorted(name for name, cls in CATALOG.items() if cls.proves == UNSTATED or not cls.proves.strip())
    assert unstated == [], f"faults that do not say how inject proves their effect: {unstated}"
    assert all("\n" not in cls.proves for cls in CATALOG.values()), "proves is one line"


def test_chaos_faults_shows_how_each_fault_is_proven(capsys):
    rows = {row["name"]: row for row in describe()}
    assert rows["network.latency"]["proves"] == CATALOG["network.latency"].proves
    cmd_faults(argparse.Namespace(json=False))
    text = capsys.readouterr().out
    assert text.count("  proves:  ") == len(CATALOG)
    assert CATALOG["message.poison"].proves in text
    cmd_faults(argparse.Namespace(json=True))
    assert {row["name"]: row["proves"] for row in json.loads(capsys.readouterr().out)} == {
        name: cls.proves for name, cls in CATALOG.items()}


class Scripted(Fault):
    """A fault whose proofs answer from lists: the base class's waiting, healing and journal
    are what is under test, with no stack."""

    name = "test.scripted"
    family = "test"
    description = "scripted proofs"
    proves = "its scripted answers"
    Params = Params

    @classmethod
    def targets_in(cls, system):
        return ("t",)
    landing_timeout_s = 0.2
    healing_timeout_s = 0.2
    poll_s = 0.01

    def __init__(self, landed: bool, healed: bool) -> None:
        super().__init__(None, "t", FaultJournal())  # type: ignore[arg-type]
        self.lands, self.heals, self.undone = landed, healed, 0

    def _apply(self) -> None:
        pass

    def _undo(self) -> None:
        self.undone += 1

    def _landed(self) -> bool:
        return self.lands

    def _healed(self) -> bool:
        return self.heals


def test_an_inject_whose_effect_is_never_seen_heals_and_fails_in_one_line():
    fault = Scripted(landed=False, healed=True)
    with pytest.raises(HarnessError, match=r"^fault test.scripted on t did not land within 0s; healed it$"):
        fault.inject()
    assert fault.undone == 1 and not fault.active
    assert [e["action"] for e in fault.journal.entries] == ["inject", "heal"]


def test_a_heal_whose_baseline_never_returns_fails_but_is_recorded():
    fault = Scripted(landed=True, healed=False).inject()
    with pytest.raises(HarnessError, match="still shows its effect 0s after healing"):
        fault.heal()
    assert fault.undone == 1 and not fault.active
    assert [e["action"] for e in fault.journal.entries] == ["inject", "landed", "heal"]
    fault.heal()  # not active any more: undone again, harmlessly, and nothing awaited
    assert fault.undone == 2


def test_a_failed_inject_whose_heal_also_fails_says_both_in_one_line():
    fault = Scripted(landed=False, healed=False)
    with pytest.raises(HarnessError, match="did not land .*; and fault test.scripted on t still shows its effect"):
        fault.inject()


def test_chaos_inject_turns_an_unproven_fault_into_exit_2(monkeypatch, capsys):
    """The CLI path: a HarnessError from inject is one line on stderr and exit code 2."""
    from harness import cli

    def unproven(args: argparse.Namespace) -> int:
        Scripted(landed=False, healed=True).inject()
        return 0

    monkeypatch.setitem(cli.COMMANDS, "inject", (unproven, *cli.COMMANDS["inject"][1:]))
    code = cli.main(["inject", "network.latency", "--target", "auth"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "did not land" in err and "Traceback" not in err


def test_message_proof_reads_the_broker_and_fails_while_it_shows_nothing():
    from harness.faults.message import QueueState, seen_by_broker

    before = QueueState(depth=0, consumers=1, dead=4)
    assert seen_by_broker(before, QueueState(0, 1, 7), 3) == "held"  # dead-lettered
    assert seen_by_broker(before, QueueState(0, 0, 4), 3) == "consumers changed"
    assert seen_by_broker(before, QueueState(0, 1, 4), 3) == "taken by a consumer"
    idle = QueueState(depth=5, consumers=0, dead=0)
    assert seen_by_broker(idle, QueueState(7, 0, 0), 3) is None  # two of three seen: not yet
    assert seen_by_broker(idle, QueueState(8, 0, 0), 3) == "held"
