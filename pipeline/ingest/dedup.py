"""Near-duplicate detection: MinHash LSH over word shingles, confirmed by shingle overlap.

Why this shape: syndicated copies (a wire story reprinted by a newspaper) differ by a byline, a
dateline or a trimmed last paragraph, so exact hashes miss them. A 64-value MinHash signature
estimates the Jaccard similarity of two texts' 3-word shingles; cut into 16 bands of 4 values,
two texts with Jaccard 0.8 share at least one band with probability > 0.999 (0.6: ~0.89, 0.3:
~0.12). The band keys are stored on each article (``minhash_bands``), so "which earlier articles
might this copy?" is one ``terms`` query over the recent window, with no window held in memory.
Candidates are then confirmed on the actual shingle sets (Jaccard or containment), so a band
collision never marks an unrelated article as a copy. (A SimHash was tried first: on
news-length texts a light edit moved it by 8+ bits, past any band scheme that stays cheap.)
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SHINGLE_WORDS = 3
MIN_WORDS = 40  # shorter texts are too thin to call near-duplicates
MIN_JACCARD = 0.6
MAX_WORDS = 600
KEEP_SHINGLES = 20_000  # articles whose shingles stay in memory; older ones are re-read if needed
MIN_CONTAINMENT = 0.85  # a trimmed copy: most of the shorter text appears in the longer
EVICTED_FILTER_BITS = 1 << 26  # 8 MiB: ~1e-4 false positives per band with a million bands in it
_WORD = re.compile(r"\w+", re.UNICODE)
_WORD_CACHE: dict[str, int] = {}


# Characters that end a word for ``\w+`` (every ASCII one that is not a letter, digit or "_",
# plus the usual typographic punctuation and spaces), and ASCII upper case to lower case.
_NON_WORD = {i: " " for i in range(128) if not chr(i).isalnum() and chr(i) != "_"}
_TYPOGRAPHIC = "\u00a0\u2009\u200a\u2013\u2014\u2018\u2019\u201c\u201d\u2026\u00ab\u00bb"
_NON_WORD.update({ord(c): " " for c in _TYPOGRAPHIC})
_NON_WORD.update({i: chr(i + 32) for i in range(ord("A"), ord("Z") + 1)})


def words(text: str) -> list[str]:
    """The lower-cased ``\\w+`` words of ``text``. Text that is ASCII once the usual punctuation is
    blanked (most English news) is split with ``str.translate``, three times faster than the regex
    and the same words (a test compares both on real feeds); anything else takes the regex."""
    blanked = text.translate(_NON_WORD)
    if blanked.isascii():
        return blanked.split()
    return _WORD.findall(text.lower())


def _word_hashes(w: list[str]) -> Any:
    import numpy as np

    cache = _WORD_CACHE
    get = cache.get
    hashes = list(map(get, w))  # one C-level pass when every word is cached (the usual case)
    if None in hashes:
        for i, word in enumerate(w):
            if hashes[i] is None:
                h = _h64(word)
                if len(cache) < 500_000:
                    cache[word] = h
                hashes[i] = h
    return np.array(hashes, dtype=np.uint64)


def shingles(text: str, k: int = SHINGLE_WORDS) -> Any:
    """Hashes of the k-word windows of ``text`` (lower-cased, punctuation dropped), as a sorted
    array of unique uint64 (8 bytes a shingle: a Python set would take ~60).

    Word hashes are stable (blake2b, cached) and combined with numpy in one vectorised pass, which
    keeps fingerprinting far below the cost of parsing the feed the text came from. Only the first
    MAX_WORDS words count: a copy is a copy from its opening paragraphs on.
    """
    return _shingles_of(words(text), k)


def _shingles_of(w: list[str], k: int) -> Any:
    import numpy as np

    w = w[:MAX_WORDS]
    if not w:
        return np.empty(0, dtype=np.uint64)
    wh = _word_hashes(w)
    if len(w) < k:
        return np.bitwise_xor.reduce(wh, keepdims=True)
    n = len(w) - k + 1
    acc = wh[:n].copy()
    with np.errstate(over="ignore"):
        for j in range(1, k):
            acc = acc * np.uint64(0x9E3779B97F4A7C15) ^ wh[j : j + n]
    return _sorted_unique(acc)


def _sorted_unique(values: Any) -> Any:
    """``np.unique`` of a 1-D array (sorted, no repeats) by sort and mask: np.unique's own
    hash-based path costs six times more on a few hundred values."""
    import numpy as np

    values = np.sort(values)
    if values.size < 2:
        return values
    keep = np.empty(values.size, dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _h64(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "big")


def similarity(a: Any, b: Any) -> tuple[float, float]:
    """(Jaccard, containment of the smaller set in the larger) of two shingle arrays."""
    import numpy as np

    if len(a) == 0 or len(b) == 0:
        return 0.0, 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter), inter / min(len(a), len(b))


BANDS, ROWS = 16, 4
_PERM_A: Any = None
_PERM_B: Any = None


def _perms() -> tuple[Any, Any]:
    global _PERM_A, _PERM_B
    if _PERM_A is None:
        import numpy as np

        rng = np.random.default_rng(20240613)  # fixed: signatures must agree across processes and runs
        _PERM_A = rng.integers(1, 2**63, size=BANDS * ROWS, dtype=np.uint64) | np.uint64(1)
        _PERM_B = rng.integers(0, 2**63, size=BANDS * ROWS, dtype=np.uint64)
    return _PERM_A, _PERM_B


def minhash_bands(shingle_set: Any) -> list[str]:
    """LSH band keys ("<band>:<hash>") of the MinHash signature of a shingle array."""
    import numpy as np

    a, b = _perms()
    x = np.asarray(shingle_set, dtype=np.uint64)
    # min((a*x + b) >> 32) == min(a*x + b) >> 32: the shift is monotone, so it is done on the 64
    # minima instead of on every product (wrapping uint64 arithmetic, in place)
    products = np.multiply.outer(x, a)
    products += b
    sig = products.min(axis=0) >> np.uint64(32)
    data = sig.astype("<u8").tobytes()
    size = ROWS * 8
    return [
        f"{i}:{hashlib.blake2b(data[i * size : (i + 1) * size], digest_size=6).hexdigest()}"
        for i in range(BANDS)
    ]


@dataclass(frozen=True)
class Fingerprint:
    bands: list[str]
    shingles: Any  # sorted unique uint64 array


def fingerprint(text: str) -> Fingerprint | None:
    """MinHash band keys and shingles of a text; None for texts too short to compare."""
    w = words(text)
    if len(w) < MIN_WORDS:
        return None
    sh = _shingles_of(w, SHINGLE_WORDS)
    return Fingerprint(minhash_bands(sh), sh)


class BandFilter:
    """A Bloom filter over band keys: "was this band ever added?" with no false negatives, a
    fixed few MiB whatever the count, and rare false positives (three bits per key).

    Band keys end in a keyed hash already, so their own digits give one bit position and
    Python's string hash (stable within a process, which is all this filter lives for) two more.
    """

    def __init__(self, bits: int = EVICTED_FILTER_BITS) -> None:
        if bits <= 0 or bits & (bits - 1):
            raise ValueError("bits must be a power of two")
        self._mask = bits - 1
        self._bits = bytearray(bits // 8)
        self.count = 0

    def _positions(self, key: str) -> tuple[int, int, int]:
        h = hash(key)
        tail = key.rpartition(":")[2]
        try:
            own = int(tail, 16)
        except ValueError:
            own = h >> 40
        return h & self._mask, (h >> 26) & self._mask, own & self._mask

    def add(self, key: str) -> None:
        for pos in self._positions(key):
            self._bits[pos >> 3] |= 1 << (pos & 7)
        self.count += 1

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not self.count:
            return False
        return all(self._bits[pos >> 3] & (1 << (pos & 7)) for pos in self._positions(key))


@dataclass
class NearDuplicateIndex:
    """Band keys (and shingles) of candidate originals: the articles of this run and earlier ones
    fetched from Elasticsearch by band. Bounded: only the ``keep`` most recently added stay in
    memory; older ones of this run are in Elasticsearch by then, where the per-batch candidate
    query finds them again. ``load_text`` fetches an article's text when a candidate's shingles
    are not at hand."""

    load_text: Callable[[list[str]], dict[str, str]] | None = None
    keep: int = KEEP_SHINGLES
    # band key -> the id of the one article with it, or a list of ids (oldest first) when several
    # share it: most keys belong to one article, and a list per key made the index a few hundred
    # thousand small containers for the garbage collector to walk again and again
    _bands: dict[str, str | list[str]] = field(default_factory=dict)
    _id_bands: dict[str, list[str]] = field(default_factory=dict)  # insertion order = age
    _shingles: dict[str, Any] = field(default_factory=dict)
    evicted: int = 0
    _evicted_bands: BandFilter | None = None  # created on the first eviction

    def __len__(self) -> int:
        return len(self._id_bands)

    def add(self, article_id: str, bands: list[str], shingle_set: Any = None) -> None:
        if shingle_set is not None and len(shingle_set):
            self._shingles[article_id] = shingle_set
        if article_id in self._id_bands:
            return
        self._id_bands[article_id] = bands
        index = self._bands
        for key in bands:
            ids = index.get(key)
            if ids is None:
                index[key] = article_id
            elif isinstance(ids, str):
                index[key] = [ids, article_id]
            else:
                ids.append(article_id)
        while len(self._id_bands) > self.keep:
            old = next(iter(self._id_bands))
            if self._evicted_bands is None:
                self._evicted_bands = BandFilter()
            for key in self._id_bands.pop(old):
                self._evicted_bands.add(key)
                ids = index[key]
                if isinstance(ids, str):
                    del index[key]
                else:
                    ids.remove(old)
                    if len(ids) == 1:
                        index[key] = ids[0]
            self._shingles.pop(old, None)
            self.evicted += 1

    def maybe_evicted(self, bands: list[str]) -> list[str]:
        """The subset of ``bands`` that an evicted article may have had (never misses one; a
        rare false positive only costs a wider lookup): the bands worth asking Elasticsearch
        about when every other candidate is still in memory."""
        if self._evicted_bands is None:
            return []
        return [b for b in bands if b in self._evicted_bands]

    def find(self, fp: Fingerprint, *, exclude: str | None = None) -> str | None:
        """The id of an earlier article this text nearly duplicates, or None."""
        votes: dict[str, int] = defaultdict(int)
        index = self._bands
        for key in fp.bands:
            ids = index.get(key)
            if ids is None:
                continue
            for aid in (ids,) if isinstance(ids, str) else ids:
                if aid != exclude:
                    votes[aid] += 1
        if not votes:
            return None
        ordered = sorted(votes, key=lambda a: (-votes[a], a))[:20]
        missing = [a for a in ordered if a not in self._shingles]
        loaded = {}
        if missing and self.load_text is not None:
            loaded = {aid: shingles(text) for aid, text in self.load_text(missing).items()}
        for aid in ordered:
            other = self._shingles.get(aid)
            if other is None:
                other = loaded.get(aid)
            if other is None or not len(other):
                continue
            jac, cont = similarity(fp.shingles, other)
            if jac >= MIN_JACCARD or cont >= MIN_CONTAINMENT:
                return aid
        return None
