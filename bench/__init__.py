"""Benchmarks of Switchboard, side by side with LangGraph on the same human-in-the-loop workload.

Not tests: nothing here asserts a timing. Run with ``python3 dev.py bench`` (see README.md).
"""
