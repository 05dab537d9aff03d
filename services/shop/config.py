"""Broker configuration (the RabbitMQ-configuration incident): validated at start
(config_validation), else silently defaulted.

That incident: RABBITMQ_* were missing from a deployment, the workers fell back to
hard-coded defaults without a word, and nothing was processed for 30 minutes. With the
check the shop refuses to start and names the variable; without it, it repeats the incident.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

REQUIRED = ("RABBITMQ_HOST", "RABBITMQ_PORT", "RABBITMQ_USER", "RABBITMQ_PASS")
HARD_CODED_DEFAULTS = {"RABBITMQ_HOST": "localhost", "RABBITMQ_PORT": "5672",
                       "RABBITMQ_USER": "guest", "RABBITMQ_PASS": "guest"}
EXIT_CONFIG = 78  # EX_CONFIG: the configuration is wrong, restarting will not help


def missing_broker_settings() -> list[str]:
    return [name for name in REQUIRED if not os.environ.get(name)]


def broker_url(validate: bool, log) -> str:
    """The AMQP URL from RABBITMQ_*; when validating, a missing or wrong one stops the service naming it."""
    missing = missing_broker_settings()
    if missing and validate:
        log.critical("config_invalid", missing=missing,
                     reason=f"{missing[0]} is not set: refusing to start with a default broker")
        print(f"configuration error: {missing[0]} is not set (required: {', '.join(REQUIRED)})",
              file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG)
    values = {name: os.environ.get(name) or HARD_CODED_DEFAULTS[name] for name in REQUIRED}
    port = values["RABBITMQ_PORT"]
    if validate and not port.isdigit():
        log.critical("config_invalid", invalid=["RABBITMQ_PORT"], reason="RABBITMQ_PORT is not a number")
        print(f"configuration error: RABBITMQ_PORT={port!r} is not a port number", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG)
    user, password = quote(values["RABBITMQ_USER"], safe=""), quote(values["RABBITMQ_PASS"], safe="")
    return f"amqp://{user}:{password}@{values['RABBITMQ_HOST']}:{port}/"
