"""The domain model: events, records and ids, the bottom layer of Switchboard.

This package exists to keep the layers acyclic. Everything the store writes and the agent
reads (the event union, requests, outbox items, origins, thread state) is defined here, so
``store`` and ``agent`` both import it and neither imports the other's types. Nothing here
does I/O, and nothing here imports another Switchboard package.
"""
