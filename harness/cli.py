"""`chaos`: the game-day command line over the same library the pytest plugin uses.

Every failure a person can fix (no engine, unknown fault, bad value) ends as one line on
stderr that says what to do, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from harness import ownership, protections, run_ids, signals
from harness.errors import HarnessError
from harness.escape import terminal

if TYPE_CHECKING:
    import docker

    from harness.view import StackView

ROOT = Path(__file__).resolve().parent.parent
GREEN_WITHIN_S = 60.0  # `chaos up` waits this long for the new stack's health to turn green
CHILDREN_TEARDOWN_S = 120.0  # an interrupted `chaos run`/`matrix` waits this long for its pytest sessions
# The signal a child pytest gets for the one the CLI got: pytest handles SIGINT and SIGTERM
# (heals, removes its stack); a hang-up would kill it without teardown, so it gets SIGTERM.
FORWARDED: dict[int, signal.Signals] = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM,
                                        signal.SIGHUP: signal.SIGTERM}


def cmd_doctor(args: argparse.Namespace) -> int:
    """Engine first (nothing works without it), then the tools and images a run needs."""
    from harness.engine import connect
    from harness.images import IMAGES

    client = connect()
    rows: list[tuple[str, bool, str]] = [("docker engine", True, f"version {client.version()['Version']}")]
    for tool, purpose in (("go", "builds Toxiproxy when its image can't be pulled"),
                          ("debootstrap", "makes the Debian base when images can't be pulled"),
                          ("docker-compose", "runs docker-compose.chaos.yml"),
                          ("tmux", "the CLI tests drive a terminal with it")):
        found = shutil.which(tool)
        rows.append((tool, bool(found), found or f"missing: {purpose}; `make setup` installs it"))
    rows += _doctor_ports(client) + _doctor_toxiproxy(client)
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


def _doctor_ports(client: "docker.DockerClient") -> list[tuple[str, bool, str]]:
    """The fixed loopback ports docker-compose.chaos.yml publishes (`chaos up` needs none)."""
    from harness import topology
    from harness.ownership import RUN_LABEL
    from harness.stack import port_is_free

    compose_up = bool(client.containers.list(filters={"label": f"{RUN_LABEL}=compose"}))
    rows = []
    for port in (topology.TOXIPROXY_API_PORT, *(p.listen_port for p in topology.PROXIES.values() if p.published)):
        free = port_is_free(port)
        detail = ("free" if free else "held by the running docker-compose stack" if compose_up
                  else "taken by another process: stop it to use docker-compose.chaos.yml "
                       "(`chaos up` needs no fixed port)")
        rows.append((f"port 127.0.0.1:{port}", free or compose_up, detail))
    return rows


def _doctor_toxiproxy(client: "docker.DockerClient") -> list[tuple[str, bool, str]]:
    """The running stack's Toxiproxy answers its API (every fault but process ones goes there)."""
    import httpx

    from harness.faults.attach import attach

    try:
        stack = attach(client=client)
    except HarnessError:
        return [("toxiproxy", True, "no stack running to check (`chaos up` starts one)")]
    api = stack.endpoint("toxiproxy")
    try:
        answer = httpx.get(f"{api.url}/version", timeout=2)
        is_json = answer.headers.get("content-type", "").startswith("application/json")
        version = answer.json().get("version", "?") if is_json else answer.text.strip()
        return [("toxiproxy", True, f"run {stack.run_id}: {api.url} answers, version {version}")]
    except httpx.HTTPError as exc:
        return [("toxiproxy", False, f"run {stack.run_id}: {api.url} does not answer ({type(exc).__name__}): "
                                     f"`chaos down --run {stack.run_id}` and `chaos up` again")]


def _param_text(name: str, spec: dict[str, Any]) -> str:
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


def _listing(rows: list[dict[str, Any]], as_json: bool, first: Callable[[dict[str, Any]], str],
             more: Callable[[dict[str, Any]], list[str]]) -> int:
    """A catalogue's output (faults, protections): JSON, or per row its name and one line, then
    the row's details indented under it."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(row["name"]) for row in rows), default=0)
    for row in rows:
        print(f"{row['name']:<{width}}  {first(row)}")
        for line in more(row):
            print(f"{'':<{width}}  {line}")
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    """The faults the active topology supports, with their targets in it; one line for the rest."""
    from harness.faults import describe, unsupported
    from harness.topology import active

    def details(row: dict[str, Any]) -> list[str]:
        params = ", ".join(_param_text(name, spec) for name, spec in row["params"].items())
        return [f"targets: {', '.join(row['targets'])}", f"params:  {params or '(none)'}", f"proves:  {row['proves']}"]

    code = _listing(describe(), args.json, lambda row: row["description"], details)
    if not args.json:
        print(unsupported_line(unsupported(), active().name))
    return code


def unsupported_line(needs: dict[str, str], system: str) -> str:
    """How many faults a topology can't offer, and the capabilities that would bring them."""
    if not needs:
        return f"{system} supports every fault of the catalog"
    wanted = ", ".join(sorted({capability for capability in needs.values() if capability}))
    return (f"{len(needs)} more fault(s) need a capability no service of {system} declares ({wanted}): "
            "`capabilities:` in the topology file")


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
    from harness import guardrails
    from harness.faults import Chaos, check, check_params, registry
    from harness.faults.attach import attach

    values = _values(args.set)
    check_params(args.fault, **values)  # bad input fails here, before anything is touched
    registry.check_for(args.for_s)
    condition = guardrails.parse(args.abort_if) if args.abort_if else None
    stack = attach(args.run)
    # The target is the run's: its own topology (its containers' label) says which there are,
    # not the one this command was given, which may describe another system.
    check(args.fault, args.target, stack.topology, **values)
    # The fault outlives this command: it belongs to whoever owns the stack.
    fault = Chaos(stack, owner=stack.owner).inject(args.fault, args.target, for_s=args.for_s, **values)
    until = f", healed in {args.for_s:g}s" if args.for_s else "; `chaos heal` removes it"
    print(f"injected {fault.name} on {fault.target} (run {stack.run_id}, record {fault.record_id}){until}")
    if condition is not None:
        started = guardrails.guard(stack.run_id, condition)
        print(f"guardrail: every fault of run {stack.run_id} is healed if {condition.text} while faults are active"
              + ("" if started else " (added to the run's watcher)"))
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    """Restarts a service of the running stack, the manual's first response, and records it in
    the run's journal as a recovery action, so the game day's report (`chaos down`) lists it.
    Exit 1 when the service did not answer again in time."""
    from harness import state
    from harness.faults.attach import attach
    from harness.faults.process import restart_service
    from harness.gameday import RECOVER

    stack = attach(args.run)
    action = restart_service(stack, args.service)
    state.append_journal(stack.run_id, {"ts": action.when, "action": RECOVER, **action.record()})
    print(f"restarted {action.target} (run {stack.run_id}): {action.outcome}")
    return 0 if action.outcome == "restored" else 1


def cmd_heal(args: argparse.Namespace) -> int:
    """Heals the selected records, each on its own run's containers. Exit 1 with one line per
    record that did not heal (kept, so `chaos heal` can try again); records of runs that are
    gone are forgotten and said."""
    from harness import state
    from harness.faults import CATALOG, registry

    if not args.all and not args.fault:
        raise HarnessError("say what to heal: `chaos heal FAULT` (a name or a record from `chaos status`) "
                           "or `chaos heal --all`")
    selected = [r for r in state.records()
                if (args.all or registry.matches(r, args.fault)) and (not args.run or r.run_id == args.run)]
    if not selected and args.fault and args.fault not in CATALOG:
        raise HarnessError(f"no active fault or record {args.fault!r}: `chaos status` lists them")
    began = time.monotonic()
    report = registry.heal_records(selected)
    took = f" in {time.monotonic() - began:.2f}s: {', '.join(report.healed)}" if report.healed else ""
    print(f"healed {len(report.healed)} fault(s){took}")
    if report.gone:
        print(f"forgot {len(report.gone)} record(s) of runs that are gone (nothing left to undo): "
              f"{', '.join(report.gone)}")
    for line in report.failed:
        print(f"chaos: {line}", file=sys.stderr)
    return 1 if report.failed else 0


def _kept_runs(client: "docker.DockerClient") -> list[str]:
    """This state directory's kept runs (`chaos up`) that still run. Its kept runs with nothing
    running any more (the engine restarted, the machine rebooted) are removed here: no reaper
    judges a kept run by its (exited) starter."""
    from harness import state
    from harness.ownership import RUN_LABEL
    from harness.stack import daemon_labels, remove_run, say

    identity = state.state_identity()
    kept = [run.run_id for run in ownership.runs_from_labels(daemon_labels(client)).values()
            if run.kept and identity and run.state == identity]
    running = {c.attrs["Labels"][RUN_LABEL] for c in client.containers.list(sparse=True, filters={"label": RUN_LABEL})}
    for run_id in [run for run in kept if run not in running]:
        say(f"removed {remove_run(client, run_id)} objects of kept run {run_id}, which no longer ran")
    return sorted(run for run in kept if run in running)


def _print_endpoints(stack: "StackView") -> None:
    from harness.status import endpoints

    rows = endpoints(stack)
    width = max(map(len, rows))
    for name, where in rows.items():
        print(f"  {name:<{width}}  {where}")


def cmd_up(args: argparse.Namespace) -> int:
    """Starts the stack and leaves it up for this checkout (`chaos down` removes it). The stack
    belongs to this process until it is green, so a start killed half-way is reaped like any
    other; only then is it marked kept (owned by no process)."""
    from harness import detached
    from harness.engine import connect
    from harness.faults.attach import attach
    from harness.reaper import reap_abandoned
    from harness.stack import Stack, mark_kept
    from harness.status import wait_green

    disabled = protections.checked(args.sut_disable)  # bad input first, before the engine is asked
    ownership.lease_s()  # a bad CHAOS_LEASE_S is bad input too: said before anything starts
    client = connect()
    kept_runs = _kept_runs(client)  # this checkout's kept runs still up (those no longer running go here)
    # Then the reaper every start runs: abandoned runs (a `chaos up` killed mid-start among them),
    # then the faults killed injectors left (on a kept run too).
    _, healed = reap_abandoned(client)
    for run_id in kept_runs:
        kept = attach(run_id, client)
        if kept.sut_mode != args.sut_mode:
            raise HarnessError(f"run {run_id} is already up with the {kept.sut_mode} shop: "
                               f"`chaos down` first to start the {args.sut_mode} one")
        print(f"already up: run {run_id} ({kept.sut_mode} shop)"
              + (f"; healed {len(healed)} fault(s) whose owner is gone or whose time is up" if healed else ""))
        _print_endpoints(kept)
        return 0
    began = time.monotonic()
    stack = Stack(sut_mode=args.sut_mode, client=client, disabled=disabled, owner=ownership.up_owner_token())
    stack.__enter__()  # on failure or Ctrl-C while starting, it removes what it made
    try:
        wait_green(lambda: stack, GREEN_WITHIN_S, f"run {stack.run_id}")
        mark_kept(client, stack.run_id, stack.labels)
    except BaseException:
        stack.stop()  # never green (or Ctrl-C): nothing half-started is kept
        raise
    detached.spawn_detached("harness.gameday", "record", stack.run_id)  # the game day's health record
    off = f", off: {', '.join(stack.disabled)}" if stack.disabled else ""
    print(f"up: run {stack.run_id} ({stack.sut_mode} shop{off}) green in {time.monotonic() - began:.1f}s")
    _print_endpoints(stack)
    print("next: `chaos status --watch`, `chaos inject FAULT --target T`, `chaos heal --all`, `chaos down`")
    return 0


def _attached_or_none(run_id: str | None, said: set[str]) -> "StackView | None":
    """The stack to report on; None when no stack runs (the faults on disk still show). When
    only other checkouts' stacks run, why none was chosen is said once on stderr (`said`)."""
    from harness.faults.attach import NO_STACK, attach

    try:
        return attach(run_id)
    except HarnessError as exc:
        if run_id:
            raise
        if str(exc) != NO_STACK and str(exc) not in said:
            said.add(str(exc))
            print(f"chaos: {terminal(exc)}", file=sys.stderr, flush=True)
        return None


def cmd_status(args: argparse.Namespace) -> int:
    """One snapshot, as a table or JSON; with --watch, redrawn until Ctrl-C (bounded by --watch-for):
    in place as a live table on a terminal, else printed again each time."""
    from harness.status import AlertTail, render, snapshot

    if args.interval <= 0 or args.watch_for <= 0:
        raise HarnessError("--interval and --watch-for take a positive number of seconds")
    deadline = time.monotonic() + args.watch_for
    clear = "\033[H\033[2J" if sys.stdout.isatty() else ""
    tail = AlertTail()  # kept between redraws: each reads only the alerts that are new
    said: set[str] = set()
    try:
        if args.watch and not args.json and sys.stdout.isatty():  # a person watching: the live table
            from harness.status_live import watch

            return watch(lambda: snapshot(_attached_or_none(args.run, said), tail), args.interval, args.watch_for)
        while True:  # plain text (or JSON) for pipes, files and scripts: what they have always read
            document = snapshot(_attached_or_none(args.run, said), tail)
            text = json.dumps(document, indent=2) if args.json else render(document)
            print((clear if args.watch else "") + text, flush=True)
            if not args.watch or time.monotonic() >= deadline:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:  # the way out of --watch
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
        print(f"wrote {os.path.relpath(path)}")  # a topology's files may live outside this checkout
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    """`chaos load start`: the system's workload on the kept stack, detached (bounded), until
    `chaos load stop`, `chaos down` or its duration; `chaos load stop`: ends it (this checkout's
    loads, or --run's). Its answers and the ledger go into the game-day report."""
    from harness import gameday_load
    from harness.load import check_bounds

    if args.action == "start":
        check_bounds(args.users, args.rate, args.duration)  # bad input first, before the engine is asked
        from harness.faults.attach import attach

        stack = attach(args.run)
        record = gameday_load.start(stack, args.users, args.rate, args.duration)
        print(f"load started on run {stack.run_id}: {record['users']} users x {record['rate']:g} orders/s each, "
              f"for at most {record['duration_s']}s; `chaos load stop` ends it, `chaos down` reports it")
        return 0
    runs = [args.run] if args.run else gameday_load.running_runs()
    stopped = [run_id for run_id in runs if gameday_load.stop(run_id) is not None]
    if not stopped:
        where = f"on run {args.run}" if args.run else "in this checkout"
        raise HarnessError(f"no load is running {where}: `chaos load start` starts one")
    for run_id in stopped:
        orders = len(gameday_load.history(run_id).ops)
        print(f"stopped the load on run {run_id}: {orders} order(s) answered so far; `chaos down` reports them")
    return 0


def _game_day_report(run_id: str, client: "docker.DockerClient", reports: Path) -> None:
    """Writes the report of a run `chaos up` kept (others have no recording: nothing to do)."""
    from harness import gameday
    from harness.faults.attach import attach

    if not run_ids.is_run_id(run_id) or not gameday.samples_path(run_id).exists():
        return  # a run another tool labelled (not a run id) was never recorded either
    try:
        stack = attach(run_id, client)
    except HarnessError:
        stack = None
    run_dir = gameday.write_report(run_id, reports, stack)
    if run_dir is not None:
        print(f"game-day report of run {run_id}: {(run_dir / 'report.html').resolve()}")


def _whose(run: ownership.Run, state: str | None) -> str:
    """One run as `chaos down --all` names it: whose it is, so a person sees what goes."""
    if not ownership.is_process_token(run.owner):
        return f"{run.run_id} ({run.owner or 'no owner label'})"
    where = "this checkout" if state and run.state == state else "another checkout"
    return f"{run.run_id} ({where}{', kept' if run.kept else ''}, owner {run.owner} on {run.host or 'an unknown host'})"


def _down_targets(args: argparse.Namespace, runs: dict[str, ownership.Run], state: str | None) -> list[str]:
    """Which runs `chaos down` removes: --run's, every one (--all, said first), else this checkout's."""
    if args.run:
        return [args.run]
    if args.all:
        if runs:
            print(f"removing every chaos-harness run on this daemon ({len(runs)}), whoever started it:")
            for run in sorted(runs):
                print(f"  {_whose(runs[run], state)}")
        return sorted(runs)
    return sorted(ownership.runs_of_state(runs.values(), state))


def cmd_down(args: argparse.Namespace) -> int:
    """Writes each kept stack's game-day report, then removes the runs; a report that cannot be
    written is said in one line and the removal happens anyway (exit code 1)."""
    from harness import gameday_load, state
    from harness.engine import connect
    from harness.faults import registry
    from harness.stack import daemon_labels, remove_run

    if args.run and args.all:
        raise HarnessError("--run and --all exclude each other: name one run, or every run on the daemon")
    client = connect()
    runs = ownership.runs_from_labels(daemon_labels(client))
    targets = _down_targets(args, runs, state.state_identity())
    unwritten = []
    for run_id in targets:  # a game day's report needs the stack still up (alerts, logs)
        try:
            gameday_load.stop(run_id)  # its answers are complete before the report reads them
            _game_day_report(run_id, client, Path(args.reports))
        except Exception as exc:  # whatever broke the report, the stack still goes
            unwritten.append(run_id)
            print(f"chaos: the game-day report of run {run_id} could not be written "
                  f"({type(exc).__name__}: {str(exc)[:200]}); removing the run anyway", file=sys.stderr)
    removed = [run_id for run_id in targets if remove_run(client, run_id)]
    if args.run and not removed:
        raise HarnessError(f"no run {args.run} to remove: `docker ps --filter label=chaos-harness.run` lists runs")
    registry.reap_stale(client)  # the faults of removed runs went with them: forget their records
    gameday_load.reap(set(ownership.runs_from_labels(daemon_labels(client))))  # and the loads of them
    print(f"removed {len(removed)} run(s)" + (f": {', '.join(removed)}" if removed else ""))
    others = sorted(set(runs) - set(targets))
    if others and not args.run:
        print(f"left {len(others)} run(s) not of this checkout: `chaos down --all` removes every run")
    return 1 if unwritten else 0


def _scenarios_command(*options: str) -> list[str]:
    """`pytest scenarios/` of this venv (else the one on PATH) with `options`, no cache written."""
    pytest = Path(sys.executable).with_name("pytest")
    return [str(pytest) if pytest.exists() else "pytest", str(ROOT / "scenarios"), *options, "-p", "no:cacheprovider"]


def cmd_run(args: argparse.Namespace) -> int:
    """The same as `pytest scenarios/ -k NAME`, with reports written."""
    command = _scenarios_command(f"--chaos-reports={args.reports}", f"--sut-mode={args.sut_mode}")
    command += [f"--stack={args.stack}"] + ([f"--abort-if={args.abort_if}"] if args.abort_if else [])
    command += [f"--sut-disable={name}" for name in protections.checked(args.sut_disable)]
    if args.scenario:
        command += ["-k", " or ".join(args.scenario)]
    return _pytest(command)


def _pytest(command: list[str]) -> int:
    """Runs one pytest session in the foreground; its exit code is ours."""
    child = subprocess.Popen(command, env=dict(os.environ))
    try:
        return child.wait()
    except BaseException:  # an interrupt: pytest gets it too, heals, removes its stack; then we go
        _stop_children([child], signals.pending() or signal.SIGINT)
        raise


def cmd_explore(args: argparse.Namespace) -> int:
    """`pytest scenarios/ --explore` with the search's options: exit 1 when a failing schedule
    was found (its replay file and scenario module are under reports/<run>/explore/)."""
    from harness.explore.pytest_plugin import parse_budget, split_names
    from harness.explore.space import explorable
    from harness.faults import describe

    parse_budget(args.budget, "--budget")  # one line here rather than from the child
    explorable(describe(), split_names(args.faults), split_names(args.targets))
    command = _scenarios_command("--explore", f"--chaos-reports={args.reports}", f"--explore-budget={args.budget}",
                                 f"--explore-seed={args.seed}")
    command += [f"--explore-faults={name}" for name in args.faults] + [f"--explore-targets={t}" for t in args.targets]
    command += [f"--sut-disable={name}" for name in protections.checked(args.sut_disable)]
    command += ["--explore-fresh"] if args.fresh else []
    return _pytest(command)


def cmd_replay(args: argparse.Namespace) -> int:
    """`pytest scenarios/ --explore-replay FILE`: runs a finding's schedule --times times on a
    fresh stack with the protections the finding had off; exit 1 while it still fails."""
    from harness.explore import replay

    found = replay.load(Path(args.file))  # a bad file: one line before any stack starts
    command = _scenarios_command(f"--explore-replay={Path(args.file).resolve()}", f"--explore-times={args.times}",
                                 f"--chaos-reports={args.reports}")
    command += [f"--sut-disable={name}" for name in found.sut_disable]
    return _pytest(command)


def _stop_children(children: list[subprocess.Popen[bytes]], signum: int) -> None:
    """Forwards an interrupt to the children still running and waits for them to tear down,
    bounded by one deadline; one still running after it is killed (the next start reaps its
    stack) and said. Signals to this process meanwhile are noted, not raised."""
    with signals.teardown():
        for child in children:
            if child.poll() is None:
                child.send_signal(FORWARDED.get(signum, signal.SIGTERM))
        deadline = time.monotonic() + CHILDREN_TEARDOWN_S
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            if child.poll() is None:
                print(f"chaos: pytest (pid {child.pid}) still tearing down after {CHILDREN_TEARDOWN_S:.0f}s: "
                      "killed it; the next start reaps its stack", file=sys.stderr, flush=True)
                child.kill()
                child.wait()


def cmd_protections(args: argparse.Namespace) -> int:
    rows = [{"name": p.name, "services": list(p.services), "what": p.what, "at_start": p.at_start or None}
            for p in protections.table().values()]
    return _listing(rows, args.json, lambda row: row["what"], lambda row: [
        f"in {', '.join(row['services'])}" + (f"; only at start: {row['at_start']}" if row["at_start"] else "")])


def cmd_matrix(args: argparse.Namespace) -> int:
    """`pytest scenarios/ --matrix`, the protections split between `--workers` sessions on a
    stack each (the cells mostly wait out budgets, so two stacks halve the wall time on two
    cores), then one matrix from their parts: exit 0 only when every protection asked for was
    killed and (for the whole matrix) every guard was killed by one."""
    from harness import matrix
    from harness.report import run_directory, schema, write_all
    from harness.stack import new_run_id

    if args.workers < 1:
        raise HarnessError(f"--workers takes a positive number, got {args.workers}")
    only = protections.checked(args.protection)
    wanted = list(only or protections.names())
    groups = [group for group in (wanted[i::args.workers] for i in range(args.workers)) if group]
    run_id, began, started = new_run_id(), time.monotonic(), time.time()
    parts_dir = Path(args.reports) / f".matrix-{run_id}"
    parts = [_matrix_worker(group, parts_dir / f"part-{n}") for n, group in enumerate(groups)]
    for n, (worker, group, _) in enumerate(parts):
        say_progress(f"worker {n}: {len(group)} protections ({', '.join(group)})")
    try:
        summaries, scenarios = _gather(parts, began)
    except BaseException:  # Ctrl-C, SIGTERM, a worker that failed: the others stop too, healing as they go
        _stop_children([worker for worker, _, _ in parts], signals.pending() or signal.SIGINT)
        raise
    summary = matrix.merge(summaries, wanted, complete=not only)
    run = schema.run_block({
        "run_id": run_id, "started": started, "finished": time.time(), "sut_mode": "resilient", "disabled": [],
        "stack": "containers", "workers": len(groups), "exit_status": 0 if summary["holds"] else 1,
        "matrix": summary})
    run_dir = run_directory(Path(args.reports), run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "matrix.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    write_all(run_dir, run, scenarios)
    shutil.rmtree(parts_dir, ignore_errors=True)  # their records are in the run's own reports now
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(matrix_text(summary, time.monotonic() - began))
        print(f"reports: {run_dir} (matrix.json, report.html)")
    return 0 if summary["holds"] else 1


def _gather(parts: list[tuple[subprocess.Popen[bytes], list[str], Path]],
            began: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each worker's matrix and scenario records, as they finish; one line for a worker that
    ended without a matrix (its pytest output's tail)."""
    summaries, scenarios = [], []
    for n, (worker, _, part) in enumerate(parts):
        code = worker.wait()
        found = part / "latest" / "matrix.json"
        if code not in (0, 1) or not found.exists():
            log = (part / "pytest.log").read_text(errors="replace") if (part / "pytest.log").exists() else ""
            last = log.strip().splitlines()[-1] if log.strip() else "no output"
            raise HarnessError(f"matrix worker {n} ended with exit code {code} and no matrix: {last} "
                               f"(see {part / 'pytest.log'})")
        summaries.append(json.loads(found.read_text()))
        scenarios += _full_records(part / "latest")
        say_progress(f"worker {n} done after {time.monotonic() - began:.0f}s")
    return summaries, scenarios


def say_progress(message: str) -> None:
    print(f"[matrix] {message}", file=sys.stderr, flush=True)


def _matrix_worker(group: list[str], part: Path) -> tuple[subprocess.Popen[bytes], list[str], Path]:
    """One pytest session of the matrix over `group`, its reports and output under `part`."""
    part.mkdir(parents=True, exist_ok=True)
    command = _scenarios_command("--matrix", f"--matrix-protection={','.join(group)}", f"--chaos-reports={part}", "-q")
    with open(part / "pytest.log", "wb") as log:
        worker = subprocess.Popen(command, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    return worker, group, part


def _full_records(run_dir: Path) -> list[dict[str, Any]]:
    """A run's scenario records with their raw timelines (each scenario's own JSON file)."""
    from harness.report import json_report

    names = [s["name"] for s in json_report.read(run_dir)["scenarios"]]
    records = [json.loads((run_dir / f"{name}.json").read_text()) for name in names]
    return [{k: v for k, v in record.items() if k not in ("schema_version", "run_id")} for record in records]


def matrix_text(summary: dict[str, Any], wall_s: float) -> str:
    """Per protection, its cells; then what does not hold, if anything."""
    from harness import matrix

    columns, rows = matrix.table(summary)
    width = max([len(name) for name, _ in rows] + [10])
    lines = [f"{len(summary['cells'])} cells ({len(rows)} protections x {len(columns)} scenarios) in {wall_s:.0f}s: "
             + ", ".join(f"{n} {v}" for v, n in summary["counts"].items())]
    for name, cells in rows:
        text = "  ".join(f"{c['scenario']}:{c['verdict']}" + (f"[{c['guard']}]" if c["guard"] else "")
                         for c in cells.values()) or "no scenario guards it"
        lines.append(f"{name:<{width}}  {text}")
    if summary["unkilled_protections"]:
        lines.append(f"not killed: {', '.join(summary['unkilled_protections'])}")
    if summary["complete"] and summary["unproven_guards"]:
        lines.append(f"guards no protection killed: {', '.join(summary['unproven_guards'])}")
    lines.append("the matrix holds" if summary["holds"] else "the matrix does NOT hold")
    return "\n".join(lines)


def _read_run(run_dir: Path) -> dict[str, Any]:
    """A run's report.json, or one line saying why there is none and where runs are listed."""
    from harness.report import json_report

    try:
        return json_report.read(run_dir)
    except (OSError, ValueError) as exc:
        reason = ("no such run" if isinstance(exc, FileNotFoundError)
                  else f"unreadable report.json ({type(exc).__name__})")
        raise HarnessError(f"{reason} in {run_dir}: `chaos run` writes one, `ls {run_dir.parent}` lists them") from None


def _judged_report(reports: Path, run: str | None) -> tuple[dict[str, Any] | None, Path]:
    """The report.json `chaos runbook` judges: the named run's (an error when it is absent), else
    the latest one's when there is one (None otherwise)."""
    run_dir = reports / (run or "latest")
    if run is None and not (run_dir / "report.json").exists():
        return None, run_dir
    return _read_run(run_dir), run_dir


def cmd_runbook(args: argparse.Namespace) -> int:
    """The manual's coverage, judged by one run: a prescription is verified only when a guard
    that proves it ran and held in that run. Exit 1 when a root cause has no scenario (a gap CI
    should see)."""
    from harness.runbook import coverage

    document, run_dir = _judged_report(Path(args.reports), args.run)
    rows = coverage(document)
    run = (document or {}).get("run", {})
    judged = None if document is None else {
        "run_id": run.get("run_id", run_dir.name), "sut_mode": run.get("sut_mode"),
        "report": str(run_dir / "report.json"), "scenarios": len(document.get("scenarios", []))}
    if args.json:
        print(json.dumps({"judged": judged, "root_causes": rows}, indent=2))
    else:
        if judged is None:
            print(f"no run found in {args.reports.rstrip('/') or '/'}/: nothing is verified (run `make chaos` first)")
        else:
            print(f"judged run {judged['run_id']} ({judged['sut_mode'] or '?'} shop, {judged['scenarios']} "
                  f"scenario(s)): {judged['report']}")
        for row in rows:
            mark = "ok  " if row["scenarios"] else "GAP "
            print(f"{mark}{row['root_cause']:<26} {row['source']:<32} scenarios: {', '.join(row['scenarios']) or '-'}")
            print(f"{'':<4}verified: {', '.join(row['verified']) or '-'}")
            for violated in row["violated"]:
                print(f"{'':<4}FAILED:   {violated['prescription']} ({', '.join(violated['failed'])})")
            rest = [p for p in row["unverified"] if p not in {v["prescription"] for v in row["violated"]}]
            if rest:
                print(f"{'':<4}not yet:  {', '.join(rest)}")
            if row["unknown"]:
                print(f"{'':<4}unknown:  {', '.join(row['unknown'])} (not steps of this root cause)")
    return 0 if all(row["scenarios"] for row in rows) else 1


def cmd_report(args: argparse.Namespace) -> int:
    """The summary of a written run (default: the latest) and where its report.html is."""
    from harness.report import json_report

    run_dir = Path(args.reports) / args.run
    document = _read_run(run_dir)
    rows = json_report.summary_rows(document.get("scenarios", []), reason_chars=max(args.width, 10))
    columns = ("scenario", "verdict", "ttd", "ttr", "reason")
    widths = {c: max([len(c)] + [len(row[c]) for row in rows]) for c in columns}
    run = document.get("run", {})
    print(terminal(f"run {run.get('run_id', args.run)} ({run.get('sut_mode', '?')} shop), "
                   f"schema {document.get('schema_version')}"))
    for row in [dict(zip(columns, ("SCENARIO", "VERDICT", "TTD", "TTR", "REASON"))), *rows]:
        print(terminal("  ".join(f"{row[c]:<{widths[c]}}" for c in columns).rstrip()))  # reasons quote logs
    print(f"time: {json_report.under_fault_line(run, document.get('scenarios', []))}")
    html = run_dir.resolve() / "report.html"
    print(f"report: {html}" if html.exists() else "report: no report.html in this run (written by schema 2 runs)")
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    from harness import adopt

    began = time.monotonic()
    written = adopt.run(Path(args.compose), Path(args.output) if args.output else None, args.force)
    for line in adopt.summary(written.adoption, args.compose):
        print(terminal(line))  # lines quote the user's file
    chaos_yaml, *beside = written.files
    print(f"wrote {chaos_yaml} and beside it {', '.join(p.name for p in beside)} in {time.monotonic() - began:.2f}s")
    print(f"next: answer the questions in {chaos_yaml}, then `chaos up --topology {chaos_yaml}`"
          if written.adoption.questions else f"next: `chaos up --topology {chaos_yaml}`")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "doctor": (cmd_doctor, "check the engine, tools and images, saying what to do about each"),
    "up": (cmd_up, "start the stack and keep it up (endpoints printed; `chaos down` removes it)"),
    "status": (cmd_status, "the running stack: health per service, active faults with time left, recent alerts"),
    "faults": (cmd_faults, "list every fault: name, family, targets, parameters"),
    "protections": (cmd_protections, "list the shop's protections (what --sut-disable and the matrix switch)"),
    "matrix": (cmd_matrix, "the mutation matrix: each protection off on its own, the scenarios that guard it run; "
                           "exit 0 only when every protection and every guard was killed"),
    "inject": (cmd_inject, "inject a fault into the running stack (until `chaos heal`, or for --for seconds)"),
    "restart": (cmd_restart, "restart a service of the running stack (the manual's first response), "
                "recorded as a recovery action"),
    "heal": (cmd_heal, "heal active faults by name or record id, or --all (the emergency stop)"),
    "run": (cmd_run, "run scenarios by name (as pytest scenarios/ -k NAME) and write reports"),
    "explore": (cmd_explore, "search for failing fault schedules under load, shrink what fails to the smallest "
                             "schedule and write it as a replay file and a scenario module"),
    "replay": (cmd_replay, "run a replay file from `chaos explore` again: how often out of --times it still fails"),
    "report": (cmd_report, "summarise a run's reports (scenario, verdict, TTD, TTR, reason) and locate report.html"),
    "runbook": (cmd_runbook, "the manual's root causes -> scenarios -> prescriptions verified by guards that held "
                             "in a run (default: the latest)"),
    "compose": (cmd_compose, "write docker-compose.chaos.yml from the topology (--check: verify only)"),
    "adopt": (cmd_adopt, "read a docker-compose file into a topology (chaos.yaml) with Toxiproxy on every edge, "
                         "plus docker-compose.chaos.yml; what it cannot decide is asked"),
    "load": (cmd_load, "start the system's load on the kept stack, detached and bounded (`load start`), or end "
                       "it (`load stop`); `chaos down` reports its orders, ledger and SLO figures"),
    "down": (cmd_down, "write the game-day report of a `chaos up` stack, then remove every container, network "
                       "and volume of this checkout's runs (or --run's, or with --all every run on the daemon)"),
}

JSON = (("--json",), {"action": "store_true", "help": "machine-readable output"})
RUN = (("--run",), {"type": run_ids.valid, "help": "the run id (default: this checkout's kept stack, else its newest "
                                                   "running one, else the docker-compose stack)"})
SUT_MODE = (("--sut-mode",), {"choices": ("resilient", "fragile"), "default": "resilient",
                              "help": "which build of the shop (default: resilient)"})
SUT_DISABLE = (("--sut-disable",), {"action": "append", "default": [], "metavar": "NAME",
                                    "help": "a protection to turn off (repeat, or comma-separate; "
                                            "`chaos protections`)"})
WITHOUT_TOPOLOGY = ("adopt",)  # it writes a topology; the one here (perhaps broken) is not read
TOPOLOGY = (("--topology",), {"metavar": "FILE", "help": "the system's topology file (default: chaos.yaml here if "
                                                       "there is one, else the bundled shop)"})
ARGUMENTS: dict[str, tuple[tuple[tuple[str, ...], dict[str, Any]], ...]] = {
    "up": (SUT_MODE, SUT_DISABLE),
    "protections": (JSON,),
    "matrix": (JSON, (("--protection",), {"action": "append", "default": [], "metavar": "NAME",
                                          "help": "only this protection (repeat, or comma-separate)"}),
               (("--workers",), {"type": int, "default": 2,
                                 "help": "pytest sessions in parallel, a stack each (default 2)"}),
               (("--reports",), {"default": "reports", "help": "where reports go (default: reports/)"})),
    "status": (JSON, RUN,
               (("--watch",), {"action": "store_true", "help": "redraw until Ctrl-C"}),
               (("--interval",), {"type": float, "default": 1.0, "help": "seconds between redraws (default 1)"}),
               (("--watch-for",), {"type": float, "default": 8 * 3600.0, "metavar": "SECONDS",
                                   "help": "stop watching after this long (default 8 hours)"})),
    "faults": (JSON,),
    "inject": ((("fault",), {"help": "a fault name from `chaos faults`"}),
               (("--target",), {"required": True, "help": "a proxy or service the fault can target"}),
               (("--set",), {"action": "append", "default": [], "metavar": "KEY=VALUE",
                             "help": "a parameter of the fault (repeatable)"}),
               (("--for",), {"dest": "for_s", "type": float, "metavar": "SECONDS",
                             "help": "heal it after this long, even if this command is gone by then"}),
               (("--abort-if",), {"metavar": "CONDITION", "help": "guardrail: heal every fault of the run when "
                                  "this holds while faults are active, e.g. \"health<50\" or \"health<50 for 5s\""}),
               RUN),
    "restart": ((("service",), {"help": "a service of the run's topology"}), RUN),
    "heal": ((("fault",), {"nargs": "?", "help": "a fault name or a record id (`chaos status`)"}),
             (("--all",), {"action": "store_true", "help": "every active fault this checkout recorded "
                                                          "(its state directory's records)"}), RUN),
    "run": ((("scenario",), {"nargs": "*", "help": "scenario names (default: all)"}), SUT_MODE, SUT_DISABLE,
            (("--reports",), {"default": "reports", "help": "where reports go (default: reports/)"}),
            (("--abort-if",), {"metavar": "CONDITION",
                               "help": "guardrail for every scenario (default: each scenario's own)"}),
            (("--stack",), {"choices": ("containers", "external"), "default": "containers",
                            "help": "external: use the running stack (`chaos up`, docker-compose) instead of "
                                    "starting one"})),
    "explore": (SUT_DISABLE,
                (("--budget",), {"default": "5m", "help": "the whole search's time, e.g. 90s, 10m (default 5m)"}),
                (("--seed",), {"type": int, "default": 1, "help": "the seed of the schedules (default 1)"}),
                (("--faults",), {"action": "append", "default": [], "metavar": "FAMILY|FAULT",
                                 "help": "draw only these fault families or faults (repeat or comma-separate)"}),
                (("--targets",), {"action": "append", "default": [], "metavar": "TARGET",
                                  "help": "draw only these targets (repeat or comma-separate)"}),
                (("--fresh",), {"action": "store_true",
                                "help": "do not run first the schedules earlier searches with the same protections "
                                        "off found failing"}),
                (("--reports",), {"default": "reports", "help": "where reports go (default: reports/)"})),
    "replay": ((("file",), {"metavar": "FILE", "help": "a replay file (reports/<run>/explore/<anomaly>.json)"}),
               (("--times",), {"type": int, "default": 5, "help": "how often to run it (default 5)"}),
               (("--reports",), {"default": "reports", "help": "where reports go (default: reports/)"})),
    "report": ((("run",), {"nargs": "?", "default": run_ids.LATEST, "type": run_ids.valid_or_latest,
                           "help": "a run id under --reports (default: latest)"}),
               (("--reports",), {"default": "reports", "help": "where reports are (default: reports/)"}),
               (("--width",), {"type": int, "default": 80, "help": "reason column width (default: 80)"})),
    "runbook": (JSON,
                (("--run",), {"type": run_ids.valid, "help": "the run whose report.json is judged (default: latest)"}),
                (("--reports",), {"default": "reports", "help": "where reports are (default: reports/)"})),
    "adopt": ((("compose",), {"metavar": "COMPOSE_FILE", "help": "your docker-compose.yml"}),
              (("-o", "--output"), {"metavar": "FILE", "help": "the topology to write (default: chaos.yaml beside "
                                                               "the compose file)"}),
              (("--force",), {"action": "store_true", "help": "overwrite the files if they exist"})),
    "compose": ((("--check",), {"action": "store_true", "help": "fail when the file drifted"}),),
    "load": ((("action",), {"choices": ("start", "stop"), "help": "start or stop the load"}),
             (("--users",), {"type": int, "default": 5, "help": "simulated customers (default 5)"}),
             (("--rate",), {"type": float, "default": 2.0, "help": "orders per second per customer (default 2)"}),
             (("--duration",), {"type": int, "default": 1800, "metavar": "SECONDS",
                                "help": "the load ends by itself after this long (default 1800, at most 3600)"}),
             RUN),
    "down": ((("--run",), {"type": run_ids.valid, "help": "remove only this run"}),
             (("--all",), {"action": "store_true", "help": "remove every chaos-harness run on the daemon, other "
                                                          "checkouts' and sessions' too (each is named first)"}),
             (("--reports",), {"default": "reports",
                               "help": "where a kept stack's game-day report goes (default: reports/)"})),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line and exit 2, like every other bad input
        raise HarnessError(f"{message} (see `chaos --help`)")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="chaos", description="chaos-harness: fault injection for the shop, judged by its manual")
    sub = root.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        for flags, options in (*ARGUMENTS.get(name, ()), TOPOLOGY):
            command.add_argument(*flags, **options)
    return root


def main(argv: list[str] | None = None) -> int:
    """Runs one command. SIGINT, SIGTERM and SIGHUP all interrupt it the same way: what it owns
    is cleaned up (a half-started stack, its pytest sessions, which get the signal too), and it
    exits with 128 + the signal (130, 143, 129)."""
    signals.reset()
    signals.install(signals.WITH_HANGUP)
    try:
        args = parser().parse_args(argv)
        from harness import topology  # the file every step of the command reads (and its children)

        topology.choose(args.topology)
        if args.command not in WITHOUT_TOPOLOGY:
            topology.active()  # a file that does not validate: one line before anything starts
        code = COMMANDS[args.command][0](args)
        owed = signals.exit_code() if signals.owed() else None  # a signal noted during its cleanup
        return code if owed is None else owed
    except HarnessError as exc:
        print(f"chaos: {terminal(exc)}", file=sys.stderr)  # messages quote what the system said
        return 2
    except KeyboardInterrupt:
        first = signals.noted()[0] if signals.noted() else "SIGINT"
        print(f"chaos: interrupted ({first})", file=sys.stderr)
        return signals.exit_code() or 130
    except BrokenPipeError:  # the reader left early (`chaos faults | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush is quiet too
        return 0
    finally:
        signals.uninstall()


if __name__ == "__main__":
    raise SystemExit(main())
