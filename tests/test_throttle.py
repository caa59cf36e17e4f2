"""The limiter on its own, with time passed in: buckets refill at the rate, stop at the burst, and are forgotten."""

from __future__ import annotations

import pytest

from journal_relay.throttle import Connections, TokenBuckets


def test_burst_then_refused():
    buckets = TokenBuckets(per_minute=60, burst=3)
    assert [buckets.take("a", now=0.0) for _ in range(4)] == [True, True, True, False]


def test_refills_at_the_rate():
    buckets = TokenBuckets(per_minute=60, burst=1)  # one token a second
    assert buckets.take("a", now=0.0)
    assert not buckets.take("a", now=0.5)
    assert buckets.take("a", now=1.0)


def test_refill_stops_at_the_burst():
    buckets = TokenBuckets(per_minute=60, burst=2)
    assert buckets.take("a", now=0.0)
    # A long quiet spell saves up at most `burst` tokens.
    assert [buckets.take("a", now=1000.0) for _ in range(3)] == [True, True, False]


def test_keys_are_independent():
    buckets = TokenBuckets(per_minute=1, burst=1)
    assert buckets.take("a", now=0.0)
    assert not buckets.take("a", now=0.0)
    assert buckets.take("b", now=0.0)


def test_idle_full_buckets_are_forgotten():
    buckets = TokenBuckets(per_minute=60, burst=2)  # full again after 2 s
    for key in ("a", "b", "c"):
        buckets.take(key, now=0.0)
    assert len(buckets) == 3
    buckets.take("d", now=5.0)
    assert len(buckets) == 1


def test_forgetting_never_forgives_a_busy_key():
    buckets = TokenBuckets(per_minute=60, burst=2)
    assert buckets.take("a", now=0.0) and buckets.take("a", now=0.0)
    buckets.take("b", now=1.0)  # 1 s later "a" is not full yet, so it must still be remembered
    assert buckets.take("a", now=1.0)
    assert not buckets.take("a", now=1.0)


def test_memory_is_capped_even_under_a_flood_of_keys():
    buckets = TokenBuckets(per_minute=1, burst=1, max_keys=100)
    for n in range(1000):
        buckets.take(f"sender{n}", now=0.0)
    assert len(buckets) == 100


def test_clock_stepping_back_does_not_drain_or_refill():
    buckets = TokenBuckets(per_minute=60, burst=1)
    assert buckets.take("a", now=10.0)
    assert not buckets.take("a", now=5.0)
    assert buckets.take("a", now=11.0)


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError):
        TokenBuckets(per_minute=0, burst=1)
    with pytest.raises(ValueError):
        TokenBuckets(per_minute=1, burst=0)


def test_connections_per_key_and_total():
    gate = Connections(max_total=3, max_per_key=2)
    assert gate.open("a") and gate.open("a")
    assert not gate.open("a")
    assert gate.open("b")
    assert not gate.open("c")  # total reached
    gate.close("a")
    assert gate.open("c")
    assert gate.total == 3


def test_closing_an_unknown_key_changes_nothing():
    gate = Connections(max_total=1, max_per_key=1)
    gate.close("nobody")
    assert gate.total == 0 and gate.open("a")
