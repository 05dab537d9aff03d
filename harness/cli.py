"""`chaos`: the game-day command line over the same library the pytest plugin uses.

Every failure a person can fix (no engine, unknown fault, bad value) ends as one line on
stderr that says what to do, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parent.parent


def cmd_doctor(args: argparse.Namespace) -> int:
    """Engine first (nothing works without it), then the tools and images a run needs."""
    from harness.engine import connect
    from harness.images import IMAGES

    client = connect()
    rows: list[tuple[str, bool, str]] = [("docker engine", True, f"version {client.version()['Version']}")]
    for tool, purpose in (("go", "builds Toxiproxy when its image can't be pulled"),
                          ("debootstrap", "makes the Debian base when images can't be pulled")):
        found = shutil.which(tool)
        rows.append((tool, bool(found), found or f"missing: {purpose}; `make setup` installs it"))
    tags = {tag for image in client.images.list(filters={"label": "chaos-harness.image"}) for tag in image.tags}
    tags |= {tag for image in client.images.list() for tag in image.tags}
    for name, spec in IMAGES.items():
        local = sorted(t for t in tags if t.startswith(f"chaos-harness/{name}:local-"))
        have = spec.official if spec.official in tags else (local[-1] if local else None)
        rows.append((f"image {name}", have is not None, have or "missing: run `make setup` (builds it)"))
    width = max(len(name) for name, _, _ in rows)
    for name, ok, detail in rows:
        print(f"{'ok  ' if ok else 'FAIL'} {name:<{width}}  {detail}")
    return 0 if all(ok for _, ok, _ in rows) else 1


def _param_text(name: str, spec: dict) -> str:
    """``name=default`` with its choices or range, read from the JSON schema."""
    bounds = {**spec, **next((s for s in spec.get("anyOf", []) if "type" in s and s["type"] != "null"), {})}
    if "enum" in bounds:
        extra = "|".join(map(str, bounds["enum"]))
    else:
        low = bounds.get("minimum", bounds.get("exclusiveMinimum"))
        high = bounds.get("maximum", bounds.get("exclusiveMaximum"))
        extra = f"{'' if low is None else low}..{'' if high is None else high}" if (low, high) != (None, None) else ""
    value = f"={spec['default']}" if "default" in spec else " required"
    return f"{name}{value}" + (f" ({extra})" if extra else "")


def cmd_faults(args: argparse.Namespace) -> int:
    from harness.faults import describe

    rows = describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        print(f"{row['name']:<{width}}  {row['description']}")
        print(f"{'':<{width}}  targets: {', '.join(row['targets'])}")
        params = ", ".join(_param_text(name, spec) for name, spec in row["params"].items())
        print(f"{'':<{width}}  params:  {params or '(none)'}")
    return 0


def _values(pairs: list[str]) -> dict[str, object]:
    """``--set k=v`` pairs; a value is read as JSON when it is (numbers, null, true), else text,
    and the fault's own model then validates it."""
    values: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise HarnessError(f"--set takes key=value, got {pair!r}")
        try:
            values[key] = json.loads(raw)
        except ValueError:
            values[key] = raw
    return values


def cmd_inject(args: argparse.Namespace) -> int:
    """Injects into a running stack and leaves the fault there (until `chaos heal`, or --for)."""
    from harness.faults import Chaos, check, registry
    from harness.faults.attach import attach

    values = _values(args.set)
    check(args.fault, args.target, **values)  # bad input fails here, before anything is touched
    registry.check_for(args.for_s)
    stack = attach(args.run)
    # The fault outlives this command: it belongs to whoever owns the stack.
    fault = Chaos(stack, owner=stack.owner).inject(args.fault, args.target, for_s=args.for_s, **values)
    until = f", healed in {args.for_s:g}s" if args.for_s else "; `chaos heal` removes it"
    print(f"injected {fault.name} on {fault.target} (run {stack.run_id}, record {fault.record_id}){until}")
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    from harness.faults import CATALOG, registry

    if not args.all and not args.fault:
        raise HarnessError("say what to heal: `chaos heal FAULT` (a name or a record from `chaos status`) "
                           "or `chaos heal --all`")
    selected = [r for r in registry.records()
                if (args.all or registry.matches(r, args.fault)) and (not args.run or r.run_id == args.run)]
    if not selected and args.fault and args.fault not in CATALOG:
        raise HarnessError(f"no active fault or record {args.fault!r}: `chaos status` lists them")
    healed = registry.heal_all(selected)
    print(f"healed {len(healed)} fault(s)" + (f": {', '.join(healed)}" if healed else ""))
    return 0


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{max(seconds, 0):.0f}s"


def cmd_status(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from harness.faults import registry

    now = time.time()
    rows = [{**asdict(r), "age_s": round(now - r.injected_at, 1),
             "left_s": None if r.expires_at is None else round(r.expires_at - now, 1)}
            for r in registry.records()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no active faults")
        return 0
    print(f"{'RECORD':<44} {'FAULT':<22} {'TARGET':<18} {'RUN':<24} {'AGE':>6} {'LEFT':>6}")
    for row in rows:
        print(f"{row['id']:<44} {row['fault']:<22} {row['target']:<18} {row['run_id']:<24} "
              f"{_age(row['age_s']):>6} {_age(row['left_s']):>6}")
    return 0


def cmd_compose(args: argparse.Namespace) -> int:
    from harness import compose

    if args.check:
        stale = compose.drift()
        if stale:
            raise HarnessError(f"{', '.join(p.name for p in stale)} drifted from the topology: run `chaos compose`")
        print("docker-compose.chaos.yml is in sync with the topology")
        return 0
    for path in compose.write():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from harness.engine import connect
    from harness.faults import registry
    from harness.stack import reap

    client = connect()
    runs = reap(client, everything=True)
    registry.reap_stale(client)  # the faults of removed runs went with them: forget their records
    print(f"removed {len(runs)} run(s)" + (f": {', '.join(runs)}" if runs else ""))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The same as `pytest scenarios/ -k NAME`, with reports written."""
    pytest = Path(sys.executable).with_name("pytest")
    command = [str(pytest) if pytest.exists() else "pytest", str(ROOT / "scenarios"),
               f"--chaos-reports={args.reports}", f"--sut-mode={args.sut_mode}", "-p", "no:cacheprovider"]
    if args.scenario:
        command += ["-k", " or ".join(args.scenario)]
    return subprocess.call(command, env=dict(os.environ))


def cmd_runbook(args: argparse.Namespace) -> int:
    """The manual's coverage: exit 1 when a root cause has no scenario (a gap CI should see)."""
    from harness.runbook import coverage

    rows = coverage()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            mark = "ok  " if row["scenarios"] else "GAP "
            print(f"{mark}{row['root_cause']:<26} {row['source']:<9} scenarios: {', '.join(row['scenarios']) or '-'}")
            print(f"{'':<4}verified: {', '.join(row['verified']) or '-'}")
            if row["unverified"]:
                print(f"{'':<4}not yet:  {', '.join(row['unverified'])}")
    return 0 if all(row["scenarios"] for row in rows) else 1


def cmd_report(args: argparse.Namespace) -> int:
    """The summary of a written run (default: the latest) and where its report.html is."""
    from harness.report import json_report

    run_dir = Path(args.reports) / args.run
    try:
        document = json_report.read(run_dir)
    except (OSError, ValueError) as exc:
        reason = ("no such run" if isinstance(exc, FileNotFoundError)
                  else f"unreadable report.json ({type(exc).__name__})")
        raise HarnessError(f"{reason} in {run_dir}: `chaos run` writes one, `ls {args.reports}` lists them") from None
    rows = json_report.summary_rows(document.get("scenarios", []), reason_chars=max(args.width, 10))
    columns = ("scenario", "verdict", "ttd", "ttr", "reason")
    widths = {c: max([len(c)] + [len(row[c]) for row in rows]) for c in columns}
    run = document.get("run", {})
    print(f"run {run.get('run_id', args.run)} ({run.get('sut_mode', '?')} shop), "
          f"schema {document.get('schema_version')}")
    for row in [dict(zip(columns, ("SCENARIO", "VERDICT", "TTD", "TTR", "REASON"))), *rows]:
        print("  ".join(f"{row[c]:<{widths[c]}}" for c in columns).rstrip())
    html = run_dir.resolve() / "report.html"
    print(f"report: {html}" if html.exists() else "report: no report.html in this run (written by schema 2 runs)")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "runbook": (cmd_runbook, "the manual's root causes -> scenarios -> prescriptions verified"),
    "doctor": (cmd_doctor, "check the engine, tools and images, saying what to do about each"),
    "faults": (cmd_faults, "list every fault: name, family, targets, parameters"),
    "compose": (cmd_compose, "write docker-compose.chaos.yml from the topology (--check: verify only)"),
    "down": (cmd_down, "remove every container, network and volume of every chaos-harness run"),
    "run": (cmd_run, "run scenarios by name (as pytest scenarios/ -k NAME) and write reports"),
    "inject": (cmd_inject, "inject a fault into the running stack (until `chaos heal`, or for --for seconds)"),
    "heal": (cmd_heal, "heal active faults by name or record id, or --all"),
    "status": (cmd_status, "list active faults: name, target, run, age, time left"),
    "report": (cmd_report, "summarise a run's reports (scenario, verdict, TTD, TTR, reason) and locate report.html"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, like every other bad input
        raise HarnessError(f"{message} (see `chaos --help`)")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="chaos", description="chaos-harness: fault injection for the shop, judged by its manual")
    sub = root.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == "faults":
            command.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "compose":
            command.add_argument("--check", action="store_true", help="fail when the file drifted")
        if name == "run":
            command.add_argument("scenario", nargs="*", help="scenario names (default: all)")
            command.add_argument("--sut-mode", choices=("resilient", "fragile"), default="resilient")
            command.add_argument("--reports", default="reports", help="where reports go (default: reports/)")
        if name == "report":
            command.add_argument("run", nargs="?", default="latest", help="a run id under --reports (default: latest)")
            command.add_argument("--reports", default="reports", help="where reports are (default: reports/)")
            command.add_argument("--width", type=int, default=80, help="reason column width (default: 80)")
        if name == "inject":
            command.add_argument("fault", help="a fault name from `chaos faults`")
            command.add_argument("--target", required=True, help="a proxy or service the fault can target")
            command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                                 help="a parameter of the fault (repeatable)")
            command.add_argument("--for", dest="for_s", type=float, metavar="SECONDS",
                                 help="heal it after this long, even if this command is gone by then")
        if name == "heal":
            command.add_argument("fault", nargs="?", help="a fault name or a record id (`chaos status`)")
            command.add_argument("--all", action="store_true", help="every active fault")
        if name in ("inject", "heal"):
            command.add_argument("--run", help="the run id (default: the newest running stack)")
        if name in ("status", "runbook"):
            command.add_argument("--json", action="store_true", help="machine-readable output")
    return root


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        return COMMANDS[args.command][0](args)
    except HarnessError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chaos: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
