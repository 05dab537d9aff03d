"""Structured JSON logs, one event per line, with the manual's lines verbatim.

The harness reads these lines back from the container's output, so every event carries
`service`, `event`, a UTC timestamp and an epoch `ts` it can line up with other clocks.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import structlog

# The operations manual's log lines, emitted exactly where their condition happens.
PAYMENT_503 = "Payment gateway API returned 503 Service Unavailable."
DB_TIMEOUT = "Database connection timed out."
INVENTORY_NULL = "Unexpected null pointer exception in inventory service."
MALFORMED_JSON = "Failed to process message from queue: malformed JSON."
DISK_LOW = "Disk space is critically low on server node-A."
INVALID_TOKEN = "User authentication failed: invalid token."


def _epoch(_: object, __: str, event: dict) -> dict:
    event["ts"] = round(time.time(), 6)
    return event


def _setup() -> None:
    """Configures structlog once, at import, so that every module's logger (even one made at
    import time, before a service calls configure()) renders the same JSON lines."""
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _epoch,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )


_setup()


def configure(service: str) -> structlog.stdlib.BoundLogger:
    """A logger bound to the service name, writing JSON lines to stdout."""
    return structlog.get_logger().bind(service=service, sut_mode=os.environ.get("SUT_MODE", ""))
