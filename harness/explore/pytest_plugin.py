"""Exploration as a pytest entry: `pytest scenarios/ -k explore` (or `--explore`) runs the
system's exploring scenario with the options below; `--explore-replay FILE` runs a finding
again. Without either, exploring scenarios are deselected, so a plain `pytest scenarios/`
never spends an exploration budget. Loaded by harness.plugin (its `pytest_plugins`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.errors import HarnessError

MARKER = "explore"
DEFAULT_BUDGET = "5m"
MAX_BUDGET_S = 24 * 3600
DEFAULT_TIMES = 5
MAX_TIMES = 50
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_budget(text: str, option: str = "--explore-budget") -> float:
    """"10m", "90s", "1h" or seconds; one line naming the option otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text or "")
    if not found or not 0 < float(found[1]) * UNITS[found[2]] <= MAX_BUDGET_S:
        raise HarnessError(f"bad {option} {text!r}: write e.g. 90s, 10m or 1h (at most 24h)")
    return float(found[1]) * UNITS[found[2]]


@dataclass(frozen=True)
class Settings:
    """The options, checked once when the session starts."""

    budget_s: float
    seed: int
    faults: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    replay: Path | None = None
    times: int = DEFAULT_TIMES
    enabled: bool = False
    fresh: bool = False  # leave out the schedules earlier searches found failing (harness.explore.memory)


def split_names(values: list[str] | None) -> tuple[str, ...]:
    """Names given repeated or comma-separated, each once, in order."""
    return tuple(dict.fromkeys(v.strip() for item in values or () for v in item.split(",") if v.strip()))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos-explore", "chaos-harness exploration")
    group.addoption("--explore", action="store_true", default=False,
                    help="run the exploring scenario (also selected by -k explore)")
    group.addoption("--explore-budget", metavar="TIME", default=DEFAULT_BUDGET,
                    help=f"the whole search's time, e.g. 90s, 10m (default {DEFAULT_BUDGET})")
    group.addoption("--explore-seed", metavar="N", type=int, default=1, help="the seed of the schedules (default 1)")
    group.addoption("--explore-faults", metavar="FAMILY|FAULT", action="append", default=[],
                    help="draw only these fault families or faults (repeat or comma-separate; default all)")
    group.addoption("--explore-targets", metavar="TARGET", action="append", default=[],
                    help="draw only these targets (repeat or comma-separate; default all)")
    group.addoption("--explore-fresh", action="store_true", default=False,
                    help="do not run first the schedules earlier searches of the same protections found failing")
    group.addoption("--explore-replay", metavar="FILE", default=None,
                    help="run a replay file written by an exploration again, --explore-times times")
    group.addoption("--explore-times", metavar="N", type=int, default=DEFAULT_TIMES,
                    help=f"how often a replay runs its schedule (default {DEFAULT_TIMES})")


SETTINGS_KEY = pytest.StashKey[Settings]()


def pytest_configure(config: pytest.Config) -> None:
    from harness.plugin import _fail_fast

    config.addinivalue_line("markers", f"{MARKER}: an exploring scenario, run only when asked (--explore, "
                            "-k explore, --explore-replay)")
    try:
        times = config.getoption("explore_times")
        if not 1 <= times <= MAX_TIMES:
            raise HarnessError(f"bad --explore-times {times}: from 1 to {MAX_TIMES}")
        replay = config.getoption("explore_replay")
        keyword = config.getoption("keyword") or ""
        config.stash[SETTINGS_KEY] = Settings(
            budget_s=parse_budget(config.getoption("explore_budget")), seed=config.getoption("explore_seed"),
            faults=split_names(config.getoption("explore_faults")),
            targets=split_names(config.getoption("explore_targets")),
            replay=Path(replay) if replay else None, times=times, fresh=config.getoption("explore_fresh"),
            enabled=bool(config.getoption("explore") or replay or "explore" in keyword))
        settings = config.stash[SETTINGS_KEY]
        if settings.enabled and settings.replay is None:
            from harness.explore.space import explorable
            from harness.faults import describe

            explorable(describe(), settings.faults, settings.targets)  # nothing to draw: one line now
    except HarnessError as exc:
        _fail_fast(str(exc), config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Exploring scenarios only when asked; of them, the replay one only with a replay file."""
    settings = config.stash[SETTINGS_KEY]
    replaying = settings.replay is not None

    # Asked by option (`--explore`, `--explore-replay`, which `chaos explore` and `chaos replay`
    # pass), the session is the exploration alone; by `-k explore`, the keyword already chose.
    alone = bool(config.getoption("explore") or replaying)

    def wanted(item: pytest.Item) -> bool:
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            return not alone
        return settings.enabled and bool(marker.kwargs.get("replay", False)) == replaying

    drop = [item for item in items if not wanted(item)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if wanted(item)]


@pytest.fixture
def explore_settings(pytestconfig: pytest.Config) -> Settings:
    """The exploration options of this session."""
    return pytestconfig.stash[SETTINGS_KEY]
