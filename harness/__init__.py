"""chaos-harness: fault injection for a containerised shop, judged against its operations manual."""

import sys

__version__ = "0.1.0"

# httpx imports its own command-line tool (click, pygments, rich) whenever rich is installed,
# which the live displays need: 5.7 MiB and 100 modules more in every process of the harness
# that makes an HTTP request (`chaos status`, the health probe, the effect checks, the recorder), for a tool it never
# runs. Refused here, so httpx takes its fallback (a stub `httpx.main`, see httpx/__init__.py);
# rich itself is imported only where a live display is drawn (status_live, progress).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
