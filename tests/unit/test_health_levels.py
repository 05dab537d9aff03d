import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "shop_health", Path(__file__).resolve().parents[2] / "services" / "shop" / "health.py")
health = importlib.util.module_from_spec(spec)
spec.loader.exec_module(health)


@pytest.mark.parametrize("score,level", [(100, "green"), (90, "green"), (89, "yellow"), (70, "yellow"),
                                         (69, "orange"), (50, "orange"), (49, "red"), (0, "red")])
def test_levels_follow_seed_003(score, level):
    assert health.level(score) == level


def test_score_is_the_weighted_share_of_passing_checks():
    body = health.report({"database": (True, 60), "breaker": (False, 40)})
    assert body == {"score": 60, "level": "orange", "checks": {"database": True, "breaker": False}}


def test_a_failed_critical_check_makes_the_service_red():
    body = health.report({"database": (False, 40), "broker": (True, 60)}, critical=("database",))
    assert body["score"] == 40 and body["level"] == "red"


def test_the_system_is_as_healthy_as_its_weakest_service():
    body = health.system({"a": {"score": 100}, "b": {"score": 40}})
    assert body["score"] == 40 and body["level"] == "red"


def test_the_harness_reads_levels_as_the_shop_reports_them():
    from harness.recovery import level_of

    assert [level_of(score) for score in range(101)] == [health.level(score) for score in range(101)]


def test_a_recent_answer_is_reused_and_an_older_one_checked_again():
    import asyncio

    calls = []

    async def check() -> bool:
        calls.append(1)
        await asyncio.sleep(0.05)
        return len(calls) % 2 == 1

    async def scenario() -> list[bool]:
        recent = health.Recent(check, max_age_s=0.2)
        burst = await asyncio.gather(*(recent() for _ in range(5)))  # one check for the whole burst
        await asyncio.sleep(0.25)
        return [*burst, await recent()]

    assert asyncio.run(scenario()) == [True] * 5 + [False]
    assert len(calls) == 2
