"""Commands packed into the wire format by hiredis's C packer, not redis-py's Python one.

redis-py's asyncio connection packs every command in Python: for each argument an encode
(``Encoder.encode``), a length, a join. A fenced commit carries some fifty arguments, and
packing was about a fifth of a worker's CPU (cProfile; py-spy put ``pack_command`` and
``Encoder.encode`` at 8 to 11 % of samples). hiredis, which the store already depends on for
parsing replies, has ``pack_command`` in C: the same bytes, several times faster (96 →
14 µs for a commit-sized command on this machine). redis-py's synchronous client uses it
already (``HiredisRespSerializer``); its asyncio client does not, hence this mixin.

What the C packer does not take — a command name with a space in it (``"CLIENT SETNAME"``),
``bytearray``, or a type redis-py refuses (``bool``, ``None``, which it reports as a
``DataError``) — goes to redis-py's own packer, so behaviour is redis-py's in every case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection, Connection

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    import hiredis

    _pack = hiredis.pack_command
except (ImportError, AttributeError):  # hiredis is a dependency; a build without it still runs
    _pack = None


class HiredisPacking(AbstractConnection):
    """Mixed in before a redis-py asyncio connection class (see ``packed``)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        head = args[0] if args else None
        if _pack is not None and not (isinstance(head, str) and " " in head):
            try:
                return [_pack(args)]
            except TypeError:
                pass
        return super().pack_command(*args)


_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def packed(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """``cls`` with its commands packed by hiredis (one subclass per connection class)."""
    if issubclass(cls, HiredisPacking):
        return cls
    if cls not in _CLASSES:
        _CLASSES[cls] = type(f"Packed{cls.__name__}", (HiredisPacking, cls), {})
    return _CLASSES[cls]


def pack_cluster(cluster: Any) -> None:
    """Give a redis-py asyncio ``RedisCluster`` hiredis-packed connections.

    Its ``from_url`` takes no connection class (it turns one into an ``ssl`` flag), and every
    node it discovers is made from the keyword arguments it shares with its nodes manager:
    set the class there, and on the startup nodes made before.
    """
    kwargs = cluster.nodes_manager.connection_kwargs
    kwargs["connection_class"] = packed(kwargs.get("connection_class") or Connection)
    for node in cluster.nodes_manager.startup_nodes.values():
        node.connection_class = packed(node.connection_class)
