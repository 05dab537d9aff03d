"""Both stacks are StackViews: a started one (harness.stack.Stack) and one attached by its run
label (harness.faults.attach.AttachedStack) have every member of the protocol, with its
parameters, and everything in harness/ that takes a stack takes a StackView."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from harness import state
from harness.faults.attach import AttachedStack
from harness.stack import Stack
from harness.view import StackView

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = sorted(name for name in vars(StackView) if not name.startswith("_"))


class Engine:
    """Never asked: building either stack talks to no engine."""


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    monkeypatch.setenv(state.STATE_ENV, str(tmp_path))  # a Stack makes its state dir's identity
    return [Stack(run_id="20270115T080000-00000a", client=Engine()),
            AttachedStack("20270115T080000-00000a", "42:1", Engine(), {})]


def _parameters(member: object) -> list[str] | None:
    """A method's parameter names (None for a property or a plain attribute)."""
    return list(inspect.signature(member).parameters) if inspect.isfunction(member) else None


def test_both_stacks_have_every_member_of_the_protocol(stacks):
    """Catches a stack without a member the harness uses through StackView (AttachedStack
    without proxy_endpoint or refresh: `chaos inject` on a stack another process started
    fails with AttributeError), or a method whose parameters differ from the protocol's (an
    endpoint() without its port). Read statically: no property runs, no engine is asked."""
    assert {"run_id", "endpoint", "proxy_endpoint", "edge_url", "logs", "toxiproxy"} <= set(MEMBERS)
    for stack in stacks:
        for name in MEMBERS:
            try:
                found = inspect.getattr_static(stack, name)
            except AttributeError:
                pytest.fail(f"{type(stack).__name__} has no {name} of StackView")
            expected = _parameters(vars(StackView)[name])
            if expected is not None:
                assert _parameters(found) == expected, f"{type(stack).__name__}.{name}"


def test_whatever_takes_a_stack_in_harness_takes_a_stack_view():
    """Catches a parameter named `stack` typed Any, object or a concrete Stack in harness/
    (code that then uses what only one of the two stacks has)."""
    loose = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in node.args.args + node.args.kwonlyargs:
                    hint = ast.unparse(arg.annotation) if arg.annotation else ""
                    if arg.arg == "stack" and "StackView" not in hint:
                        loose.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}(stack: {hint or '?'})")
    assert not loose, "stacks not typed as StackView:\n  " + "\n  ".join(loose)
