"""How much one source may ask of the receiver: token buckets per key, and open connections per key.

Pure and single-threaded (the receiver's event loop is the only caller); time is passed in as `now`,
seconds on a monotonic clock.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

# A hard ceiling on remembered keys, whatever the settings: a flood of distinct senders must not grow memory
# without bound. Past it the least recently seen key is forgotten, which can only make us more lenient.
MAX_KEYS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One token bucket per key: `per_minute` tokens refill continuously, at most `burst` are saved up.

    A bucket that has been idle long enough to be full again is the same as no bucket, so it is forgotten;
    memory is bounded by the keys active within the last `burst / per_minute` minutes (and by `max_keys`).
    """

    def __init__(self, *, per_minute: float, burst: int, max_keys: int = MAX_KEYS) -> None:
        if per_minute <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("per_minute must be > 0, burst >= 1 and max_keys >= 1")
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._max_keys = max_keys
        self._refill_seconds = self._burst / self._rate
        # Least recently used first, so eviction only ever looks at the front.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, *, now: float) -> bool:
        """Spend one token for `key` if it has one; False means 'over the limit, try later'."""
        self._forget_idle(now=now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self._burst, updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            # max(): a clock that steps back must not drain the bucket.
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.updated = max(bucket.updated, now)
            self._buckets.move_to_end(key)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _forget_idle(self, *, now: float) -> None:
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.updated < self._refill_seconds:
                return
            self._buckets.popitem(last=False)


class Connections:
    """Open connections, in total and per key; `open` says whether one more is allowed and counts it."""

    def __init__(self, *, max_total: int, max_per_key: int) -> None:
        if max_total < 1 or max_per_key < 1:
            raise ValueError("max_total and max_per_key must be >= 1")
        self._max_total = max_total
        self._max_per_key = max_per_key
        self._open: Counter[str] = Counter()
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def open(self, key: str) -> bool:
        if self._total >= self._max_total or self._open[key] >= self._max_per_key:
            return False
        self._open[key] += 1
        self._total += 1
        return True

    def close(self, key: str) -> None:
        if key not in self._open:
            return
        if self._open[key] <= 1:
            # Drop the key rather than keep a zero, so memory follows open connections only.
            del self._open[key]
        else:
            self._open[key] -= 1
        self._total -= 1
