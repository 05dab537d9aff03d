"""The shop's customers for Locust: each places orders through the edge with its own token.

Run by harness/load.py in a subprocess (Locust patches the process with gevent), as the workload
of scenarios/shop/workload.py. Every answer is appended to CHAOS_LOAD_HISTORY as one JSON line (key,
status, order id, times), which the harness reads back as history for the ledger: load is judged
the same way as single orders.

With CHAOS_ASK_AGAIN=1 a customer told PAYMENT_PENDING sends the same order again, under the same
Idempotency-Key, as a customer unsure whether it went through does: the shop must answer with
the order it already has (200, replayed), not take a second one.
"""

import json
import os
import time
import uuid

from locust import HttpUser, constant_throughput, events, task

HISTORY = os.environ.get("CHAOS_LOAD_HISTORY", "")
TOKEN = os.environ.get("CHAOS_TOKEN", "")
RATE = float(os.environ.get("CHAOS_LOAD_RATE", "2"))  # orders per second per user
ASK_AGAIN = os.environ.get("CHAOS_ASK_AGAIN") == "1"
ANSWERED = (200, 201, 202)  # the order, as replayed, paid, or accepted for later payment
_sink = open(HISTORY, "a", encoding="utf-8") if HISTORY else None


@events.quitting.add_listener  # type: ignore[untyped-decorator]  # locust's event hooks are untyped
def _close(**_: object) -> None:
    if _sink:
        _sink.close()


class Customer(HttpUser):
    wait_time = constant_throughput(RATE)

    @task
    def place_order(self) -> None:
        key = uuid.uuid4().hex
        if self._send(key) == "PAYMENT_PENDING" and ASK_AGAIN:
            self._send(key)

    def _send(self, key: str) -> str | None:
        """One try of the order under `key`, recorded in the history; the order's status answered."""
        began = time.time()
        with self.client.post("/orders", json={"sku": "sku-1", "amount_cents": 990},
                              headers={"Idempotency-Key": key, "Authorization": f"Bearer {TOKEN}"},
                              name="POST /orders", timeout=10, catch_response=True) as response:
            status = response.status_code
            try:
                body = response.json()
            except ValueError:
                body = {}
            if status in ANSWERED:
                response.success()
            else:
                response.failure(f"status {status}")
        if _sink:
            _sink.write(json.dumps({"key": key, "status": status, "id": body.get("id"),
                                    "order_status": body.get("status"), "invoked": began,
                                    "completed": time.time()}) + "\n")
            _sink.flush()
        return body.get("status") if isinstance(body, dict) else None
