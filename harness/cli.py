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


def cmd_faults(args: argparse.Namespace) -> int:
    from harness.faults import describe

    rows = describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        params = ", ".join(
            f"{name}={spec.get('default')}" + (f" ({'|'.join(map(str, spec['enum']))})" if "enum" in spec else "")
            for name, spec in row["params"].items())
        print(f"{row['name']:<14} {row['family']:<8} targets: {','.join(row['targets']):<16} {params}")
        print(f"{'':<14} {row['description']}")
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
    from harness.stack import reap

    runs = reap(connect(), everything=True)
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


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "doctor": (cmd_doctor, "check the engine, tools and images, saying what to do about each"),
    "faults": (cmd_faults, "list every fault: name, family, targets, parameters"),
    "compose": (cmd_compose, "write docker-compose.chaos.yml from the topology (--check: verify only)"),
    "down": (cmd_down, "remove every container, network and volume of every chaos-harness run"),
    "run": (cmd_run, "run scenarios by name (as pytest scenarios/ -k NAME) and write reports"),
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
