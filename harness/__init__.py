"""chaos-harness: fault injection for a containerised shop, judged against its operations manual."""

__version__ = "0.1.0"
