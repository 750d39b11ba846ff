"""Durable threads in Redis: the event log, execution state, leases, the ledger and the outbox."""
