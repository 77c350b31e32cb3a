"""Property tests of the consistent-hash ring (impl/kv/ring.py).

Stated bounds (checked below):
* balance: with V virtual nodes per node, the most loaded node owns at most
  (1 + 5/sqrt(V)) x the mean share of keys, + 0.1 for sampling 10,000 keys. (A node's share of
  the circle has a relative spread of about 1/sqrt(V); 5/sqrt(V) leaves room for the maximum
  over up to 16 nodes.)
* minimal movement: adding a node moves only keys that now belong to it, about K/(n+1) of
  them; removing a node moves only the keys it owned, to the others.
"""

from __future__ import annotations

from bisect import bisect_right

from hypothesis import given, settings
from hypothesis import strategies as st
from treadle.impl.kv.ring import Ring, stable_hash

KEYS = [f"key-{i}" for i in range(10_000)]
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
node_sets = st.lists(names, min_size=3, max_size=16, unique=True)
vnode_counts = st.sampled_from([64, 128, 256])


def linear_preference_list(ring: Ring, key: str, n: int) -> tuple[str, ...]:
    """The reference: scan every token clockwise from the key, no binary search."""
    tokens = sorted(
        (stable_hash(f"{node}#{i}"), node) for node in ring.nodes for i in range(ring.vnodes)
    )
    h = stable_hash(key)
    start = next((i for i, (t, _) in enumerate(tokens) if t > h), 0)
    out: list[str] = []
    for j in range(len(tokens)):
        node = tokens[(start + j) % len(tokens)][1]
        if node not in out:
            out.append(node)
        if len(out) == min(n, len(ring.nodes)):
            break
    return tuple(out)


def test_stable_hash_is_not_pythons_hash():
    # fixed value: the same in every process, unlike hash()
    assert stable_hash("k0") == stable_hash("k0")
    assert stable_hash("k0") == int.from_bytes(
        __import__("hashlib").blake2b(b"k0", digest_size=8).digest(), "big"
    )


@settings(max_examples=25, deadline=None)
@given(node_sets, st.integers(1, 16), st.lists(names, min_size=1, max_size=20), st.integers(1, 5))
def test_preference_list_matches_linear_scan(nodes, vnodes, keys, n):
    ring = Ring(nodes, vnodes)
    for key in keys:
        pl = ring.preference_list(key, n)
        assert pl == linear_preference_list(ring, key, n)
        assert len(pl) == min(n, len(nodes)) and len(set(pl)) == len(pl)
        assert pl[0] == ring.owner(key)


def test_lookup_uses_bisect_over_sorted_tokens():
    ring = Ring([f"n{i}" for i in range(10)], 32)
    assert ring._points == sorted(ring._points)
    h = stable_hash("some-key")
    i = bisect_right(ring._points, h) % len(ring._points)
    assert ring.owner("some-key") == ring._owners[i]


@settings(max_examples=15, deadline=None)
@given(node_sets, vnode_counts)
def test_balance(nodes, vnodes):
    ring = Ring(nodes, vnodes)
    load = ring.load(KEYS)
    mean = len(KEYS) / len(nodes)
    bound = 1 + 5 / vnodes**0.5 + 0.1
    assert max(load.values()) / mean <= bound, (load, bound)


@settings(max_examples=15, deadline=None)
@given(node_sets, names, vnode_counts)
def test_adding_a_node_moves_about_k_over_n_keys_only_to_it(nodes, new, vnodes):
    if new in nodes:
        return
    before = Ring(nodes, vnodes)
    after = before.with_node(new)
    moved = [k for k in KEYS if before.owner(k) != after.owner(k)]
    assert all(after.owner(k) == new for k in moved)
    expected = len(KEYS) / (len(nodes) + 1)
    assert len(moved) <= expected * (1 + 5 / vnodes**0.5 + 0.1)
    assert len(moved) >= expected * 0.4
    # preference lists change only by the new node coming in
    for k in KEYS[:500]:
        a, b = before.preference_list(k, 3), after.preference_list(k, 3)
        assert set(b) - set(a) <= {new}


@settings(max_examples=15, deadline=None)
@given(node_sets, st.data(), vnode_counts)
def test_removing_a_node_moves_only_its_keys(nodes, data, vnodes):
    gone = data.draw(st.sampled_from(nodes))
    before = Ring(nodes, vnodes)
    after = before.without_node(gone)
    moved = [k for k in KEYS if before.owner(k) != after.owner(k)]
    assert all(before.owner(k) == gone for k in moved)
    assert len(moved) == sum(1 for k in KEYS if before.owner(k) == gone)
    expected = len(KEYS) / len(nodes)
    assert len(moved) <= expected * (1 + 5 / vnodes**0.5 + 0.1)
    for k in KEYS[:500]:
        a, b = before.preference_list(k, 3), after.preference_list(k, 3)
        assert gone not in b
        assert set(a) - {gone} <= set(b)
