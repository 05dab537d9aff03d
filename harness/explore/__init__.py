"""Exploration: generated fault schedules under a steady workload, judged afterwards by the
system's checker, a failing schedule shrunk to the smallest that still fails for the same
anomaly class, and written so that it can be replayed.

- ``schedule``: what one example is (steps of fault, target, parameters, start, duration);
- ``space``: the Hypothesis strategies that draw schedules from a topology's fault catalog;
- ``search``: the driver (Hypothesis generates and shrinks; a budget bounds it);
- ``replay``: replay files and the scenario module a finding becomes.
"""
