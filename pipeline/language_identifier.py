"""py3langid's language identifier, made fast: a vectorised automaton walk and a memory-mapped model.

The detection rules (short texts, declared languages) are in ``pipeline.language``; this module
only gives py3langid's own guesses, faster.

Speed: py3langid walks its byte automaton one byte at a time in Python, which was most of its
cost (~100 us for a few hundred characters). The automaton is an Aho-Corasick one over byte
n-grams of at most ``depth`` bytes, so the state after any byte depends only on the last ``depth``
bytes read: starting every position from the root and advancing all positions together ``depth``
times gives every state in ``depth`` vectorised steps. The feature counts then go, in the same
first-seen order, through py3langid's scoring: its own code for one text, and for a feed's texts
the same per-text product followed by the same element-wise steps on all their rows at once. So
guesses and confidences are bit for bit the same (tests compare both on real feeds, one text at a
time and in batches). Should the installed model not have that shape, the plain byte-by-byte walk
is used.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from array import array
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
MAX_AUTOMATON_DEPTH = 8  # deeper automata (other models) take the byte-by-byte walk


def automaton_depth(nextmove: Any, rowbase: Any, states: int) -> int | None:
    """Length of the longest path from the root of the automaton to a state first reached by it
    (breadth first), or None when some transition jumps deeper than one byte past its source (the
    automaton is then not the trie-shaped kind the vectorised walk relies on)."""
    import numpy as np

    nm = np.asarray(nextmove)
    rb = np.asarray(rowbase, dtype=np.int64)
    depth = np.full(states, -1, dtype=np.int64)
    depth[0] = 0
    frontier = np.array([0], dtype=np.int64)
    level = 0
    byte = np.arange(256, dtype=np.int64)
    while frontier.size:
        level += 1
        nxt = np.unique(nm[(rb[frontier][:, None] + byte[None, :]).ravel()].astype(np.int64))
        frontier = nxt[depth[nxt] < 0]
        depth[frontier] = level
    if (depth < 0).any():
        return None
    # every transition goes at most one level deeper than its source (chunked: 256 per state)
    for start in range(0, states, 8192):
        src = np.arange(start, min(states, start + 8192))
        targets = nm[(rb[src][:, None] + byte[None, :])]
        if (depth[targets] > depth[src][:, None] + 1).any():
            return None
    return int(depth.max())


def _vectorised_class() -> Any:
    import math

    import numpy as np
    from py3langid.langid import LanguageIdentifier

    class VectorisedIdentifier(LanguageIdentifier):
        """py3langid's identifier with the automaton walk done by numpy (see the module doc)."""

        __slots__ = ("_depth", "_group_first", "_lock", "_nm", "_out", "_ptc32", "_ptc32_ready", "_rb")

        def enable(self, depth: int) -> None:
            self._depth = depth
            self._lock = threading.Lock()  # the scratch arrays below serve one guess at a time
            self._nm = np.frombuffer(self.tk_nextmove, dtype=f"u{self.tk_nextmove.itemsize}")
            self._rb = np.asarray(self._rowbase, dtype=np.int64)
            self._out = np.asarray(self.tk_output, dtype=np.int64)
            # float32 copies of the float16 weight rows, made when a feature is first seen:
            # converting float16 inside every product cost more than the rest of a guess, and the
            # product of exact float32 copies is the same number. np.empty pages in only what is used.
            self._ptc32 = np.empty(self.nb_ptc.shape, dtype=np.float32)
            self._ptc32_ready = np.zeros(len(self.nb_ptc), dtype=bool)
            self._group_first: Any = None  # scratch for _counts_of_group(), made when first needed

        def visits(self, data: bytes) -> tuple[Any, Any] | None:
            """(features, counts) in order of first occurrence (what py3langid's walk counts)."""
            b = np.frombuffer(data, dtype=np.uint8)
            n = b.size
            if not n:
                return None
            nm, rb = self._nm, self._rb
            state = nm[rb[0] + b]  # each position read from the root: its state given one byte
            for k in range(1, min(self._depth, n)):
                # positions >= k now see k+1 bytes; earlier ones already saw all there is
                at = rb[state[k - 1 : -1]]
                at += b[k:]
                state[k:] = nm[at]
            feats = self._out[state]
            return self._counts_of_group(feats, np.zeros(n, dtype=np.int64), 1)[0]

        def visits_many(self, texts: list[bytes]) -> list[tuple[Any, Any] | None]:
            """``visits`` of several texts with one walk over all their bytes: every position
            still reads only bytes of its own text, so each result is the one ``visits`` gives."""
            data = b"".join(texts)
            b = np.frombuffer(data, dtype=np.uint8)
            n = b.size
            if not n:
                return [None] * len(texts)
            lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
            starts = np.cumsum(lengths) - lengths
            offset = np.arange(n) - np.repeat(starts, lengths)  # position within its own text
            nm, rb = self._nm, self._rb
            state = nm[rb[0] + b]
            for k in range(1, self._depth):
                at = np.flatnonzero(offset >= k)  # positions with k earlier bytes of their text
                if not at.size:
                    break
                state[at] = nm[rb[state[at - 1]] + b[at]]
            feats = self._out[state]
            found: list[tuple[Any, Any] | None] = []
            text_of = np.repeat(np.arange(len(texts)), lengths)
            with self._lock:
                for lo in range(0, len(texts), self.COUNT_GROUP):
                    hi = min(len(texts), lo + self.COUNT_GROUP)
                    span = slice(starts[lo], starts[hi - 1] + lengths[hi - 1])
                    found.extend(self._counts_of_group(feats[span], text_of[span] - lo, hi - lo))
            return found

        COUNT_GROUP = 16  # texts counted together: a scratch row of len(features) ints for each

        def _counts_of_group(self, feats: Any, text: Any, count: int) -> list[tuple[Any, Any] | None]:
            """(features, counts) of each of ``count`` texts, features in order of first
            occurrence (what py3langid's walk counts), from the walk's outputs in text order
            (-1: no feature) and ``text``, the index of the text of each. The first position of
            each (text, feature) key is found by assigning positions in reverse, which leaves the
            earliest."""
            keep = feats >= 0
            f = feats[keep]
            t = text[keep]
            m = f.size
            if not m:
                return [None] * count
            features = len(self.nb_ptc)
            if self._group_first is None:
                self._group_first = np.empty(self.COUNT_GROUP * features, dtype=np.int64)
            key = t * features + f
            at = np.arange(m)
            self._group_first[key[::-1]] = at[::-1]
            first = self._group_first[key]
            is_first = first == at
            counts = np.bincount(first, minlength=m)[is_first]
            f = f[is_first]
            bounds = np.searchsorted(t[is_first], np.arange(count + 1)).tolist()
            return [
                (f[a:b], counts[a:b]) if b > a else None for a, b in zip(bounds, bounds[1:], strict=False)
            ]

        def classify_many(self, texts: list[str]) -> list[tuple[str, float]]:
            """``classify`` of several texts: their automaton walks done together, and the steps
            after each text's naive Bayes product (scaling, softmax, merged aliases, best class)
            done on all their score rows at once, element by element the same arithmetic."""
            if not texts:
                return []
            if not self._norm_probs:  # (not how this module builds it) py3langid's own steps
                return [self.classify(t) for t in texts]
            encoded = [self._encode(t) for t in texts]
            found = self.visits_many(encoded)
            scores = np.empty((len(texts), len(self.nb_pc)), dtype=np.float32)
            present = [f[0] for f in found if f is not None]
            if present:
                with self._lock:
                    self._ready_rows(np.concatenate(present))
            ptc, pc = self._ptc32, self.nb_pc
            for row, f in enumerate(found):
                if f is None:  # py3langid's score of a text without features (norm_probs)
                    scores[row] = 0.0
                else:  # _raw_score's product, on the same numbers in the same order
                    scores[row] = np.log1p(f[1].astype(np.float32)) @ ptc[f[0]] + pc
            # T = sqrt(bytes) per text, as py3langid scales it (a float32 factor either way)
            scores *= np.array([1.0 / math.sqrt(len(d) or 1) for d in encoded], dtype=np.float32)[:, None]
            np.exp(scores - scores.max(axis=1, keepdims=True), out=scores)
            # numpy sums each contiguous row as it sums py3langid's single row (a test checks)
            scores /= scores.sum(axis=1, keepdims=True)
            for i, j in self._alias_pairs:
                scores[:, i] += scores[:, j]
                scores[:, j] = 0.0
            best = scores.argmax(axis=1).tolist()
            out = []
            for row, i in enumerate(best):
                conf = float(scores[row, i])
                if self.min_confidence is not None and conf < self.min_confidence:
                    out.append(("und", conf))
                else:
                    out.append((self.nb_classes[i], conf))
            return out

        def _ready_rows(self, feats: Any) -> None:
            """Make the float32 weight rows of these features (once each; a made row never
            changes, so reading one needs no lock). The caller holds ``_lock``."""
            new = feats[~self._ptc32_ready[feats]]
            if new.size:
                self._ptc32[new] = self.nb_ptc[new]
                self._ptc32_ready[new] = True

        def _raw_score(self, text: bytes) -> Any:
            with self._lock:
                found = self.visits(text)
                if found is None:
                    return super()._raw_score(b"")  # py3langid's answer for a text without features
                feats, counts = found
                self._ready_rows(feats)
                rows = self._ptc32[feats]
            # py3langid's naive Bayes score (log1p of the float32 counts times the feature rows,
            # plus the class priors), on the same numbers in the same order
            return np.log1p(counts.astype(np.float32)) @ rows + self.nb_pc

    return VectorisedIdentifier


@lru_cache(maxsize=1)
def identifier() -> Any:
    """The identifier in use: the vectorised one when the installed model allows it, else
    py3langid's own (one per process, built on first use)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    try:
        cls = _vectorised_class()
        ident = _from_unpacked(cls) or cls.from_model_file(MODEL_FILE, norm_probs=True)
        depth = _model_depth(len(ident.tk_output))
        if depth is None:
            depth = automaton_depth(ident.tk_nextmove, ident._rowbase, len(ident.tk_output))  # noqa: SLF001
        if depth is not None and depth <= MAX_AUTOMATON_DEPTH and hasattr(ident, "_sparse_score"):
            ident.enable(depth)
            return ident
    except (AttributeError, TypeError, ValueError):  # a py3langid whose internals moved: the plain walk
        pass
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


# The bundled model is an LZMA-compressed npz: unpacking it costs about 0.5 CPU-s in every process
# that guesses a language (each parse-worker pool, each Airflow task). Its arrays are kept
# uncompressed in the cache directory and memory-mapped instead (about 20 ms, and the pages are
# shared by every process on the machine). Keyed by py3langid's version and the model file's size
# and mtime, so an upgrade unpacks again.
_UNPACKED = ("ptc", "pc", "nextmove", "row", "out")


def unpacked_model_dir() -> Path | None:
    from importlib.metadata import PackageNotFoundError, version

    from py3langid.langid import MODEL_DIR, MODEL_FILE

    from pipeline.settings import cache_dir

    try:
        stat = (MODEL_DIR / MODEL_FILE).stat()
        key = f"py3langid-{version('py3langid')}-{stat.st_size}-{int(stat.st_mtime)}"
    except (OSError, PackageNotFoundError):
        return None
    return cache_dir() / "models" / key


def prepare_unpacked_model() -> Path | None:
    """Unpack the language model into the cache now (``newswatch model build`` does it at install
    and image build); the directory, or None when the cache cannot be written."""
    directory = unpacked_model_dir()
    if directory is None:
        return None
    if not (directory / "classes.json").exists():
        try:
            _unpack(directory)
        except OSError as exc:
            log.warning("could not unpack the language model into %s: %s", directory, exc)
            return None
    return directory


def _from_unpacked(cls: Any) -> Any:
    """The identifier from the unpacked arrays (unpacking them first if needed), or None when the
    cache directory cannot be used (the caller then reads the compressed model)."""
    import numpy as np

    directory = prepare_unpacked_model()
    if directory is None:
        return None
    try:
        arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in _UNPACKED}
        classes = json.loads((directory / "classes.json").read_text())
    except (OSError, ValueError) as exc:
        log.debug("language model cache unusable (%s): reading the packed model", exc)
        return None
    row = array("H" if arrays["row"].dtype.itemsize == 2 else "I", arrays["row"].tobytes())
    return cls(
        arrays["ptc"], np.asarray(arrays["pc"]), classes, arrays["nextmove"], arrays["out"].tolist(),
        norm_probs=True, tk_row=row,
    )


def _unpack(directory: Path) -> None:
    import numpy as np
    from py3langid.langid import MODEL_DIR, MODEL_FILE
    from py3langid.modelio import load_model

    ptc, pc, classes, nextmove, row, out = load_model(MODEL_DIR / MODEL_FILE)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        tmp.chmod(0o755)  # readable by every user of the machine, like the files in it
        for name, value in (
            ("ptc", np.asarray(ptc)),
            ("pc", np.asarray(pc)),
            ("nextmove", np.frombuffer(nextmove, dtype=f"u{nextmove.itemsize}")),
            ("row", np.frombuffer(row, dtype=f"u{row.itemsize}")),
            ("out", np.asarray(out, dtype=np.int32)),
        ):
            np.save(tmp / f"{name}.npy", value)
        (tmp / "classes.json").write_text(json.dumps(list(classes)))  # written last: marks it complete
        try:
            tmp.rename(directory)  # atomic; another process may have won the race, which is fine
        except OSError:
            if not (directory / "classes.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Depth of the automaton of py3langid 0.4.0's bundled model (checked by a unit test against
# ``automaton_depth``), keyed by its number of states: saves each worker process the check.
_KNOWN_DEPTHS = {104_583: 6}


def _model_depth(states: int) -> int | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return _KNOWN_DEPTHS.get(states) if version("py3langid") == "0.4.0" else None
    except PackageNotFoundError:
        return None
