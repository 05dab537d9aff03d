"""One word, one meaning (README "Words"): probe is the health sampler, so the faults' own
checks that they took effect never say probe, only the wire marker the shop reads does."""

import re
from pathlib import Path

FAULTS = Path(__file__).resolve().parents[2] / "harness" / "faults"
# What the shop's services read, kept as they are: the header that marks a check's request and
# the idempotency-key prefix of a marked charge.
WIRE_MARKERS = re.compile(r"X-Chaos-Probe|chaos-probe|\"probe-\"")
PROBE = re.compile(r"\bprobes?\b|\bprobe_|_probe\b|\bProbe\b", re.IGNORECASE)


def probe_words(text: str) -> list[str]:
    """The lines of a module that use probe for something, wire markers aside."""
    return [line.strip() for line in text.splitlines() if PROBE.search(WIRE_MARKERS.sub("", line))]


def test_the_faults_call_their_effect_checks_wire_checks_or_marked_charges_never_probes():
    """Bug caught: a fault family (or an edit to one) names its own landing or heal check a probe
    again, so probe means two things (the health sampler and the effect check)."""
    found = {path.name: probe_words(path.read_text(encoding="utf-8")) for path in sorted(FAULTS.glob("*.py"))}
    assert {name: lines for name, lines in found.items() if lines} == {}


def test_the_wire_markers_alone_are_not_probe_words():
    """Bug caught: the check reads past the markers the shop needs, or misses a probe word next to one."""
    assert probe_words('headers={"X-Chaos-Probe": "1"}; key = "probe-" + hex') == []
    assert probe_words("one probe through the proxy") == ["one probe through the proxy"]
    assert probe_words("def service_probe(x):") == ["def service_probe(x):"]
