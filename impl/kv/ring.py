"""A consistent-hash ring with virtual nodes (Karger et al., STOC 1997; Dynamo, SOSP 2007).

Pure and usable alone: no I/O, no imports from the rest of treadle.

Every physical node owns ``vnodes`` tokens: points on a 64-bit circle, ``hash("<node>#<i>")``.
A key hashes to a point; its *preference list* is the first ``n`` distinct physical nodes met
walking clockwise from that point. Lookup is a binary search (``bisect``) over the sorted
token array, so it costs O(log(nodes x vnodes)) plus the walk to collect ``n`` distinct nodes.

The hash is BLAKE2b (first 8 bytes, big-endian), never Python's ``hash()``: it must be the same
in every process and on every machine.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from hashlib import blake2b

RING_SIZE = 1 << 64


def stable_hash(text: str) -> int:
    """A 64-bit position on the ring; the same everywhere (unlike ``hash()``)."""
    return int.from_bytes(blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


class Ring:
    """An immutable ring. ``with_node``/``without_node`` return new rings."""

    __slots__ = ("nodes", "vnodes", "_points", "_owners")

    def __init__(self, nodes: Iterable[str], vnodes: int = 8):
        if vnodes < 1:
            raise ValueError("vnodes must be at least 1")
        self.nodes: tuple[str, ...] = tuple(sorted(set(nodes)))
        self.vnodes = vnodes
        tokens = sorted(
            (stable_hash(f"{node}#{i}"), node) for node in self.nodes for i in range(vnodes)
        )
        self._points = [t for t, _ in tokens]
        self._owners = [n for _, n in tokens]

    def __repr__(self) -> str:
        return f"Ring({list(self.nodes)!r}, vnodes={self.vnodes})"

    def __len__(self) -> int:
        return len(self.nodes)

    def with_node(self, node: str) -> Ring:
        return Ring(self.nodes + (node,), self.vnodes)

    def without_node(self, node: str) -> Ring:
        return Ring([n for n in self.nodes if n != node], self.vnodes)

    def _start(self, key: str) -> int:
        # the first token strictly clockwise of the key's point (wrapping around)
        i = bisect_right(self._points, stable_hash(key))
        return 0 if i == len(self._points) else i

    def owner(self, key: str) -> str:
        """The first node of the key's preference list (its primary)."""
        if not self._points:
            raise ValueError("empty ring")
        return self._owners[self._start(key)]

    def preference_list(self, key: str, n: int) -> tuple[str, ...]:
        """The first ``n`` distinct physical nodes clockwise from the key (fewer if the ring has
        fewer nodes)."""
        owners = self._owners
        total = len(owners)
        if total == 0:
            return ()
        want = min(n, len(self.nodes))
        out: list[str] = []
        i = self._start(key)
        for _ in range(total):
            node = owners[i]
            if node not in out:
                out.append(node)
                if len(out) == want:
                    break
            i += 1
            if i == total:
                i = 0
        return tuple(out)

    def walk(self, key: str) -> tuple[str, ...]:
        """Every physical node in clockwise order from the key: the preference list extended
        with the fallback nodes a sloppy quorum uses."""
        return self.preference_list(key, len(self.nodes))

    def load(self, keys: Iterable[str]) -> dict[str, int]:
        """How many of ``keys`` each node owns (as primary)."""
        out = dict.fromkeys(self.nodes, 0)
        for k in keys:
            out[self.owner(k)] += 1
        return out
