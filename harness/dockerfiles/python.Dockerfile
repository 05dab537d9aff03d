# Local stand-in for python:3.11-slim-bookworm: Debian's CPython 3.11 with venv.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
