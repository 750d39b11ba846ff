"""Logs, metrics and traces: a bottom package, beside model/, that every layer may use.

It exists to keep the layers acyclic: the store counts its Redis errors, the run loop its
steps, the channels their deliveries, all into the same registry and the same log context,
and none of them has to import a layer above it. It imports no other Switchboard package
(the layer contract in pyproject.toml checks that), and does no I/O of its own at import.
"""
