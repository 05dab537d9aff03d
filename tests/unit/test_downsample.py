"""Thinning a day of samples for the plots, and finding the active faults of every sample."""

from __future__ import annotations

import random

from harness import recovery

T0 = 1_800_000_000.0


def day(n: int = 20_000, seed: int = 3) -> tuple[list[dict], list[float]]:
    """n samples at 2 Hz with random scores and unanswered ones, and fault edges every 500 s."""
    rng = random.Random(seed)
    samples = [{"ts": T0 + i / 2, "score": None if rng.random() < 0.01 else rng.randint(0, 100), "level": "x"}
               for i in range(n)]
    edges = [T0 + 500 * k + 37.3 for k in range(1, n // 1000)]  # mid-bucket: not a first or last anyway
    return samples, edges


def test_downsampling_keeps_every_edge_and_the_extremes_of_every_bucket():
    """Catches a thinning that moves or hides a fault's effect: for every fault edge the samples
    just before and at/after it are drawn, and per bucket its lowest and highest score, first
    and last sample and an unanswered one if it had any."""
    samples, edges = day()
    kept = recovery.downsample(samples, edges, buckets=100)
    assert len(kept) < len(samples) / 10
    assert [s["ts"] for s in kept] == sorted(s["ts"] for s in kept)
    ids = {id(s) for s in kept}
    times = [s["ts"] for s in samples]
    for edge in edges:
        after = next(i for i, t in enumerate(times) if t >= edge)
        assert id(samples[after - 1]) in ids and id(samples[after]) in ids
    span = times[-1] - times[0]
    buckets: dict[int, list[dict]] = {}
    for s in samples:
        buckets.setdefault(min(int((s["ts"] - times[0]) / span * 100), 99), []).append(s)
    drawn = {b: [s for s in group if id(s) in ids] for b, group in buckets.items()}
    for b, group in buckets.items():
        scores = [s["score"] for s in group if s["score"] is not None]
        kept_scores = [s["score"] for s in drawn[b] if s["score"] is not None]
        assert min(kept_scores) == min(scores) and max(kept_scores) == max(scores)
        assert drawn[b][0] is group[0] and drawn[b][-1] is group[-1]
        assert any(s["score"] is None for s in drawn[b]) == any(s["score"] is None for s in group)


def test_few_samples_are_drawn_as_they_are():
    """Catches thinning a scenario's few seconds of samples (nothing to gain, detail lost)."""
    samples, _ = day(n=300)
    assert recovery.downsample(samples, [], buckets=100) == samples


def test_active_faults_of_every_sample_in_one_sweep_match_the_direct_way():
    """Catches a sweep that drops an overlapping or still-open window, or one that ends late."""
    rng = random.Random(5)
    windows = []
    for k in range(40):
        start = T0 + rng.uniform(0, 900)
        windows.append(
            {"fault": f"f{k % 7}", "start": start, "end": None if k % 13 == 0 else start + rng.uniform(0, 60)}
        )
    windows.sort(key=lambda w: w["start"])
    times = [T0 + rng.uniform(-10, 1000) for _ in range(3000)] + [w["start"] for w in windows] + \
        [w["end"] for w in windows if w["end"] is not None]
    assert recovery.active_faults_each(times, windows) == [recovery.active_faults(t, windows) for t in times]
