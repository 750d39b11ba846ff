"""agent/collector.py: what a process of ours does to the garbage collector after start-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from agent import collector


@pytest.fixture
def restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored")
def test_settle_freezes_start_up_and_collects_the_young_less_often() -> None:
    _, older, oldest = gc.get_threshold()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    collector.settle()
    assert gc.get_freeze_count() > 0  # what existed is in the permanent generation
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, older, oldest)
    assert collector.YOUNG_THRESHOLD > 700  # CPython's default, which the setting raises
