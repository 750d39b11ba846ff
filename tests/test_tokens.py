"""Token counting never downloads: the encoding file is used only when it is on disk and whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import tokens


def test_without_the_file_the_estimate_is_used(tmp_path: Path) -> None:
    counter = tokens.counter(tmp_path)
    assert counter is tokens.ESTIMATE
    assert not counter.exact
    assert counter.count("12345") == 2  # 5 bytes at 2.5 bytes a token
    assert counter.count("123456") == 3  # rounded up
    assert counter.method.startswith("estimate")


def test_a_damaged_file_is_not_used_and_nothing_is_fetched(tmp_path: Path) -> None:
    # tiktoken itself would answer a file that fails its hash by downloading it again; the
    # suite's network guard would fail this test if anything tried.
    (tmp_path / tokens.cache_name()).write_bytes(b"not a BPE file")
    assert tokens.counter(tmp_path) is tokens.ESTIMATE


def test_the_file_on_disk_counts_exactly() -> None:
    counter = tokens.counter()
    if not counter.exact:
        pytest.skip("o200k_base is not on disk (python3 dev.py bench fetches it)")
    assert counter.method == "tiktoken o200k_base"
    assert counter.count("hello world") == 2
    assert counter.messages([{"role": "user", "content": "hello world"}]) == 2 + 4
