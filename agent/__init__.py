"""The agent core: events, next steps, context rendering and the run loop.

Nothing here talks to the network or Redis on its own: the store, the LLM client and
the tools are handed in by whoever runs it.
"""
