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
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any

from pipeline.ingest.band_filter import BandFilter

SHINGLE_WORDS = 3
MIN_WORDS = 40  # shorter texts are too thin to call near-duplicates
MIN_JACCARD = 0.6
MAX_WORDS = 600
KEEP_SHINGLES = 20_000  # articles whose shingles stay in memory; older ones are re-read if needed
MIN_CONTAINMENT = 0.85  # a trimmed copy: most of the shorter text appears in the longer
_WORD = re.compile(r"\w+", re.UNICODE)
_WORD_CACHE: dict[str, int] = {}
_WORD_CACHE_MAX = 500_000  # words whose hash a process keeps (~60 MB at most)


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
    try:  # one C-level pass when every word is cached (the usual case)
        return np.fromiter(map(cache.__getitem__, w), dtype=np.uint64, count=len(w))
    except KeyError:
        pass
    # hash each new word once (set operations, not a Python loop over every word)
    new = {word: _h64(word) for word in set(w).difference(cache)}
    if len(cache) + len(new) <= _WORD_CACHE_MAX:
        cache.update(new)
        lookup = cache.__getitem__
    else:  # the cache is full: this text's words alone
        new.update((word, cache[word]) for word in set(w).intersection(cache))
        lookup = new.__getitem__
    return np.fromiter(map(lookup, w), dtype=np.uint64, count=len(w))


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


def _signatures(x: Any, starts: Any) -> Any:
    """MinHash signatures (BANDS*ROWS rows, one column per segment) of the shingle hashes ``x``
    cut into segments at ``starts``. Shingles need not be unique or sorted: a minimum over a
    multiset is the minimum over its set."""
    import numpy as np

    a, b = _perms()
    # min((a*x + b) >> 32) == min(a*x + b) >> 32: the shift is monotone, so it is done on the 64
    # minima instead of on every product (wrapping uint64 arithmetic, in place). One hash function
    # at a time, in one reused buffer the size of x: a feed's 14,000 shingles take 110 KB, where
    # all 64 rows at once took 7 MB, more than a core's cache, on two cores shared with the parse
    # worker next door and Elasticsearch.
    out = np.empty((len(a), len(starts)), dtype=np.uint64)
    products = np.empty_like(x)
    for row in range(len(a)):
        np.multiply(x, a[row], out=products)
        products += b[row]
        np.minimum.reduceat(products, starts, out=out[row])
    out >>= np.uint64(32)
    return out


_BAND_SLICES = [(f"{i}:", slice(i * ROWS * 8, (i + 1) * ROWS * 8)) for i in range(BANDS)]


def _band_keys(signature: Any) -> list[str]:
    data = signature.astype("<u8").tobytes()
    blake = hashlib.blake2b
    return [prefix + blake(data[part], digest_size=6).hexdigest() for prefix, part in _BAND_SLICES]


class Fingerprint:
    """MinHash band keys of a text, and its shingles (computed when first asked for: most texts
    are never compared with another, so a parse worker sends only the bands and the text)."""

    __slots__ = ("_shingles", "bands", "source")

    def __init__(self, bands: list[str], source: str) -> None:
        self.bands = bands
        self.source = source  # the text, or its first MAX_WORDS words joined by spaces
        self._shingles: Any = None

    @property
    def shingles(self) -> Any:
        """Sorted unique uint64 shingle hashes of the text's first MAX_WORDS words."""
        if self._shingles is None:
            self._shingles = shingles(self.source)
        return self._shingles

    def __reduce__(self) -> tuple[Any, ...]:
        # one string for the bands (cheaper to pickle than sixteen); shingles are remade if needed
        return (_unpickle_fingerprint, (" ".join(self.bands), self.source))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fingerprint) and (self.bands, self.source) == (other.bands, other.source)

    def __hash__(self) -> int:
        return hash(tuple(self.bands))

    def __repr__(self) -> str:
        return f"Fingerprint(bands={self.bands[:2]}..., {len(self.source)} chars)"


def _unpickle_fingerprint(bands: str, source: str) -> Fingerprint:
    return Fingerprint(bands.split(" "), source)


def fingerprint(text: str) -> Fingerprint | None:
    """MinHash band keys and shingles of a text; None for texts too short to compare."""
    return fingerprints([text])[0]


FINGERPRINT_CHUNK = 100_000  # shingles per vectorised pass: 64 x 8 bytes each, ~51 MB at most


def fingerprints(texts: list[str]) -> list[Fingerprint | None]:
    """``fingerprint`` of many texts (a feed's entries) in a few vectorised passes: the numpy
    calls cost the same for one text as for fifty, and per text they were most of the cost.
    The band keys are the same as one text at a time (a test compares them)."""
    import numpy as np

    out: list[Fingerprint | None] = [None] * len(texts)
    k = SHINGLE_WORDS
    todo: list[tuple[int, list[str]]] = []
    for i, text in enumerate(texts):
        w = words(text)
        if len(w) >= MIN_WORDS:
            todo.append((i, w))
    at = 0
    while at < len(todo):
        # a chunk of texts (at least one) whose first MAX_WORDS words fit the chunk's budget
        chunk: list[tuple[int, list[str], int]] = []
        size = 0
        while at < len(todo) and (not chunk or size + min(len(todo[at][1]), MAX_WORDS) <= FINGERPRINT_CHUNK):
            i, w = todo[at]
            at += 1
            chunk.append((i, w[:MAX_WORDS], len(w)))
            size += len(chunk[-1][1])
        flat = list(chain.from_iterable(w for _, w, _ in chunk))
        wh = _word_hashes(flat)
        n = len(flat) - k + 1
        acc = wh[:n].copy()
        with np.errstate(over="ignore"):
            for j in range(1, k):
                acc = acc * np.uint64(0x9E3779B97F4A7C15) ^ wh[j : j + n]
        # the windows that lie inside one text (texts have >= MIN_WORDS > k words each)
        lengths = np.array([len(w) for _, w, _ in chunk], dtype=np.intp)
        ends = np.cumsum(lengths)
        valid = np.ones(len(flat), dtype=bool)
        for j in range(1, k):
            valid[ends - j] = False
        x = acc[valid[:n]]
        starts = np.concatenate(([0], np.cumsum(lengths - (k - 1))[:-1]))
        sig = _signatures(x, starts)
        for col, (i, w, total) in enumerate(chunk):
            source = texts[i] if total <= MAX_WORDS else " ".join(w)
            out[i] = Fingerprint(_band_keys(sig[:, col]), source)
    return out


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
    _id_bands: dict[str, list[str]] = field(default_factory=dict)  # article id -> its band keys
    _shingles: dict[str, Any] = field(default_factory=dict)
    evicted: int = 0
    _evicted_bands: BandFilter | None = None  # created on the first eviction
    _evicted_pending: list[str] = field(default_factory=list)  # evicted, not yet in the filter
    _age: deque[str] = field(default_factory=deque)  # ids in _id_bands, oldest first

    def __len__(self) -> int:
        return len(self._id_bands)

    def add(
        self, article_id: str, bands: list[str], shingle_set: Any = None, *, shared: bool | None = None
    ) -> None:
        """``shingle_set``: a shingle array, or the article's ``Fingerprint`` (whose shingles are
        then computed only if the article is ever a candidate). ``shared``: whether any article in
        the index has one of these bands, when the caller has just looked (None: look now)."""
        if isinstance(shingle_set, Fingerprint) or (shingle_set is not None and len(shingle_set)):
            self._shingles[article_id] = shingle_set
        if article_id in self._id_bands:
            return
        self._id_bands[article_id] = bands
        self._age.append(article_id)
        index = self._bands
        if shared is None:
            shared = not index.keys().isdisjoint(bands)
        if not shared:  # the usual case: no other article has these bands
            index.update(zip(bands, repeat(article_id)))
        else:
            for key in bands:
                ids = index.get(key)
                if ids is None:
                    index[key] = article_id
                elif isinstance(ids, str):
                    index[key] = [ids, article_id]
                else:
                    ids.append(article_id)
        while len(self._id_bands) > self.keep:
            old = self._age.popleft()  # (a deque: finding a dict's oldest key slows as it drains)
            if self._evicted_bands is None:
                self._evicted_bands = BandFilter()
            gone = self._id_bands.pop(old)
            self._evicted_pending.extend(gone)  # into the filter a batch at a time
            if len(self._evicted_pending) >= 65_536:
                self._flush_evicted()
            held = list(map(index.get, gone))
            if held.count(old) == len(held):  # its bands were its own: drop them in one pass
                deque(map(index.pop, gone), maxlen=0)
            else:
                for key, ids in zip(gone, held, strict=True):
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
        self._flush_evicted()
        return [b for b, hit in zip(bands, self._evicted_bands.contains_many(bands), strict=True) if hit]

    def _flush_evicted(self) -> None:
        if self._evicted_bands is not None and self._evicted_pending:
            self._evicted_bands.add_many(self._evicted_pending)
            self._evicted_pending = []

    def find(self, fp: Fingerprint, *, exclude: str | None = None) -> str | None:
        """The id of an earlier article this text nearly duplicates, or None."""
        held = [ids for ids in map(self._bands.get, fp.bands) if ids is not None]
        if not held:
            return None  # the usual case: no band in common with any article in memory
        return self._confirmed(fp, held, exclude)

    def find_or_add(self, article_id: str, fp: Fingerprint) -> str | None:
        """``find`` for an article (never itself); when it nearly duplicates none, ``add`` it with
        its fingerprint. The same as the two calls, with one pass over the bands instead of two
        (each a lookup in a dict of some hundred thousand keys)."""
        held = [ids for ids in map(self._bands.get, fp.bands) if ids is not None]
        if held and (original := self._confirmed(fp, held, article_id)) is not None:
            return original
        self.add(article_id, fp.bands, fp, shared=bool(held))
        return None

    def _confirmed(self, fp: Fingerprint, held: list[str | list[str]], exclude: str | None) -> str | None:
        votes: dict[str, int] = defaultdict(int)
        for ids in held:
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
            if isinstance(other, Fingerprint):
                other = other.shingles
            if other is None:
                other = loaded.get(aid)
            if other is None or not len(other):
                continue
            jac, cont = similarity(fp.shingles, other)
            if jac >= MIN_JACCARD or cont >= MIN_CONTAINMENT:
                return aid
        return None
