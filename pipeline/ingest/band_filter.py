"""A Bloom filter over MinHash band keys: which bands the articles evicted from memory had.

Why: a long run keeps only the most recent articles' bands in ``dedup.NearDuplicateIndex``; a
copy of an older one is found in Elasticsearch, and this filter says which bands are worth asking
about there (usually none), in a fixed few MiB whatever the number of evicted articles.
"""

from __future__ import annotations

from typing import Any

EVICTED_FILTER_BITS = 1 << 26  # 8 MiB: ~1e-4 false positives per band with a million bands in it


class BandFilter:
    """A Bloom filter over band keys: "was this band ever added?" with no false negatives, a
    fixed few MiB whatever the count, and rare false positives (three bits per key).

    The three bit positions come from Python's 64-bit string hash (stable within a process, which
    is all this filter lives for): its low 26 bits, the next 26, and the top bits of the hash
    times an odd constant. Keys go in and are asked about a batch at a time, so the bit work is
    done by numpy (a run asks about every band of every new article).
    """

    def __init__(self, bits: int = EVICTED_FILTER_BITS) -> None:
        import numpy as np

        if bits <= 0 or bits & (bits - 1):
            raise ValueError("bits must be a power of two")
        self._shift = bits.bit_length() - 1
        self._bits = np.zeros(bits // 8, dtype=np.uint8)
        self.count = 0

    def _positions(self, keys: list[str]) -> Any:
        import numpy as np

        h = np.fromiter(map(hash, keys), dtype=np.int64, count=len(keys)).view(np.uint64)
        mask = np.uint64((1 << self._shift) - 1)
        with np.errstate(over="ignore"):
            mixed = (h * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - self._shift)
        return np.stack((h & mask, (h >> np.uint64(26)) & mask, mixed))

    def add_many(self, keys: list[str]) -> None:
        import numpy as np

        if not keys:
            return
        pos = self._positions(keys).ravel()
        byte, bit = pos >> np.uint64(3), pos & np.uint64(7)
        for b in range(8):
            # one bit value at a time: repeated bytes in a group all set that same bit, so the
            # buffered fancy-index assignment loses nothing (np.bitwise_or.at is 10x slower)
            self._bits[byte[bit == b]] |= np.uint8(1 << b)
        self.count += len(keys)

    def contains_many(self, keys: list[str]) -> list[bool]:
        import numpy as np

        if not keys or not self.count:
            return [False] * len(keys)
        pos = self._positions(keys)
        hit = (self._bits[pos >> np.uint64(3)] >> (pos & np.uint64(7)).astype(np.uint8)) & np.uint8(1)
        return hit.all(axis=0).tolist()

    def add(self, key: str) -> None:
        self.add_many([key])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.contains_many([key])[0]
