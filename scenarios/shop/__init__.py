"""The shop's side of its chaos scenarios: how the harness is told about one system.

clients (the edge, the vendor's control API, the sink's mails, inventory), ledger (the checker of
a history against what the outside world says), evidence (reads that world), workload and
locustfile (its customers under load) and fixtures (`shop`, `vendor`, `sink`). The harness
(harness/) knows none of it: a system of your own writes its own package like this one next to
its scenarios, on harness.history, harness.feeds, harness.alerts, harness.datastores and
harness.load.
"""
