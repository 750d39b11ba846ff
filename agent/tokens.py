"""Counting the tokens of a context: exactly with tiktoken, or a stated conservative estimate.

tiktoken downloads an encoding's BPE file on first use; a service (and a test) must never do
that, so we only hand tiktoken a file that is already on disk: ``SWITCHBOARD_TIKTOKEN_DIR``
(default ``./.tiktoken``), where ``python -m bench`` puts o200k_base, or any directory laid
out as tiktoken's own cache (file named by the sha1 of the encoding's download URL).
tiktoken checks the file's SHA-256 as it loads it. Without the file the counter estimates:
two tokens per five bytes of UTF-8, rounded up. o200k_base averages about four bytes a token
on English prose but only about three on our tag-heavy thread text (tags, ids, version
numbers), so the estimate counts some 20 % high there and more on prose: a context it calls
within budget is within budget.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / ".tiktoken"
ENCODING = "o200k_base"
# Where tiktoken would download o200k_base from; its cache file is named by this URL's sha1.
_O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
# Its SHA-256 (tiktoken's own expected hash): checked here first, because tiktoken answers a
# cached file that fails its check by downloading the file again.
_O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
BYTES_PER_TOKEN = 2.5
"""The estimate's ratio: below what o200k_base reaches on our text (about 3), so it counts high."""
# Each chat message costs a few tokens of framing beyond its content (role, separators).
MESSAGE_OVERHEAD = 4


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@dataclass(frozen=True)
class Counter:
    """Counts tokens; ``method`` says how ("tiktoken o200k_base" or "estimate ...")."""

    method: str
    _encoding: _Encoding | None = None

    @property
    def exact(self) -> bool:
        return self._encoding is not None

    def count(self, text: str) -> int:
        if self._encoding is not None:
            return len(self._encoding.encode_ordinary(text))
        return -(-len(text.encode()) * 2 // 5)  # ceil(bytes / BYTES_PER_TOKEN)

    def messages(self, messages: list[dict[str, str]]) -> int:
        return sum(self.count(m["content"]) + MESSAGE_OVERHEAD for m in messages)


ESTIMATE = Counter(method=f"estimate (1 token per {BYTES_PER_TOKEN} bytes, counts high)")


def cache_dir() -> Path:
    return Path(os.environ.get("SWITCHBOARD_TIKTOKEN_DIR") or DEFAULT_DIR)


def cache_name() -> str:
    """The file name tiktoken's cache gives o200k_base."""
    return hashlib.sha1(_O200K_URL.encode()).hexdigest()


@cache
def counter(directory: Path | None = None) -> Counter:
    """Exact when tiktoken and the encoding file are here, else the estimate. Never downloads."""
    where = directory or cache_dir()
    path = where / cache_name()
    try:
        if hashlib.sha256(path.read_bytes()).hexdigest() != _O200K_SHA256:
            return ESTIMATE
    except OSError:
        return ESTIMATE
    try:
        # tiktoken reads TIKTOKEN_CACHE_DIR when it loads an encoding: pointing it at a
        # directory that holds the file means it reads the file instead of downloading.
        os.environ["TIKTOKEN_CACHE_DIR"] = str(where)
        import tiktoken

        encoding = tiktoken.get_encoding(ENCODING)
    except (ImportError, ValueError, OSError):
        return ESTIMATE
    return Counter(method=f"tiktoken {ENCODING}", _encoding=encoding)
