"""A plain numpy forward pass of the MiniLM (BERT) encoder, read straight from the safetensors.

It is the yardstick the ONNX graph written by ``pipeline.classify.minilm_graph`` is checked
against, so it is written to be read rather than to be fast: one function per step of the BERT
encoder, float32 throughout, no torch. ``load_minilm`` is shared with the graph writer so both
read the weights the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import ClassifierError

# The only names the encoder needs, relative to wherever the checkpoint roots them.
_EMBEDDINGS = ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
               "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
               "embeddings.LayerNorm.bias")
_LAYER = ("attention.self.query", "attention.self.key", "attention.self.value",
          "attention.output.dense", "intermediate.dense", "output.dense")
_LAYER_NORMS = ("attention.output.LayerNorm", "output.LayerNorm")


@dataclass(frozen=True)
class MiniLMWeights:
    """The encoder's configuration and its tensors under prefix-free names
    (``embeddings.word_embeddings.weight``, ``encoder.layer.0.attention.self.query.weight``...)."""

    hidden: int
    heads: int
    layers: int
    eps: float
    tensors: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.tensors[name]


def expected_names(layers: int) -> list[str]:
    """Every tensor name the encoder reads (the pooler and position_ids are not among them)."""
    names = list(_EMBEDDINGS)
    for i in range(layers):
        for module in (*_LAYER, *_LAYER_NORMS):
            names += [f"encoder.layer.{i}.{module}.weight", f"encoder.layer.{i}.{module}.bias"]
    return names


def load_minilm(model_dir: Path) -> MiniLMWeights:
    """Read ``config.json`` and ``model.safetensors`` from ``model_dir``.

    Checkpoints root their names differently (``bert.embeddings...``, ``embeddings...``), so the
    prefix is taken from where ``embeddings.word_embeddings.weight`` sits in this file."""
    from safetensors.numpy import load_file

    config_path, weights_path = model_dir / "config.json", model_dir / "model.safetensors"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClassifierError(f"{config_path}: cannot read the model configuration: {exc}") from exc
    for field, wanted in (("hidden_act", "gelu"), ("position_embedding_type", "absolute")):
        if config.get(field, wanted) != wanted:
            raise ClassifierError(f"{config_path}: field {field!r} is {config[field]!r}; only "
                                  f"{wanted!r} is supported")
    try:
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        layers, eps = int(config["num_hidden_layers"]), float(config["layer_norm_eps"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ClassifierError(f"{config_path}: missing or invalid field {exc}") from exc
    if hidden % heads:
        raise ClassifierError(f"{config_path}: hidden_size {hidden} is not a multiple of "
                              f"num_attention_heads {heads}")
    try:
        raw = load_file(str(weights_path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own and OS errors alike
        raise ClassifierError(f"{weights_path}: cannot read the weights: {exc}") from exc
    anchor = _EMBEDDINGS[0]
    prefixes = [name[: -len(anchor)] for name in raw if name.endswith(anchor)]
    if len(prefixes) != 1:
        raise ClassifierError(f"{weights_path}: expected one tensor named '*{anchor}', "
                              f"found {len(prefixes)}")
    tensors: dict[str, np.ndarray] = {}
    for name in expected_names(layers):
        tensor = raw.get(prefixes[0] + name)
        if tensor is None:
            raise ClassifierError(f"{weights_path}: tensor {prefixes[0] + name!r} is missing")
        tensors[name] = tensor.astype(np.float32, copy=False)
    return MiniLMWeights(hidden, heads, layers, eps, tensors)


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU (the erf form, not the tanh approximation)."""
    from scipy.special import erf

    return (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class NumpyMiniLM:
    """``forward(input_ids, attention_mask, token_type_ids)`` -> last hidden state
    ``(batch, tokens, hidden)``, float32: what the ONNX graph must reproduce."""

    def __init__(self, model_dir: Path) -> None:
        self.weights = load_minilm(model_dir)

    def linear(self, x: np.ndarray, name: str) -> np.ndarray:
        # torch's Linear stores (out, in): y = x W^T + b.
        return x @ self.weights[f"{name}.weight"].T + self.weights[f"{name}.bias"]

    def norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return layer_norm(x, self.weights[f"{name}.weight"], self.weights[f"{name}.bias"], self.weights.eps)

    def attention(self, x: np.ndarray, additive_mask: np.ndarray, layer: str) -> np.ndarray:
        batch, tokens, hidden = x.shape
        heads = self.weights.heads
        size = hidden // heads

        def split(t: np.ndarray) -> np.ndarray:  # (batch, tokens, hidden) -> (batch, heads, tokens, size)
            return t.reshape(batch, tokens, heads, size).transpose(0, 2, 1, 3)

        q = split(self.linear(x, f"{layer}.attention.self.query"))
        k = split(self.linear(x, f"{layer}.attention.self.key"))
        v = split(self.linear(x, f"{layer}.attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(size)) + additive_mask
        context = (softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(batch, tokens, hidden)
        return self.linear(context, f"{layer}.attention.output.dense")

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                token_type_ids: np.ndarray) -> np.ndarray:
        w = self.weights
        tokens = input_ids.shape[1]
        x = (w["embeddings.word_embeddings.weight"][input_ids]
             + w["embeddings.token_type_embeddings.weight"][token_type_ids]
             + w["embeddings.position_embeddings.weight"][:tokens])
        x = self.norm(x, "embeddings.LayerNorm")
        # Padding keys get the lowest float: after the softmax they weigh exactly nothing.
        additive_mask = ((1.0 - attention_mask[:, None, None, :].astype(np.float32))
                         * np.finfo(np.float32).min)
        for i in range(w.layers):
            layer = f"encoder.layer.{i}"
            x = self.norm(x + self.attention(x, additive_mask, layer), f"{layer}.attention.output.LayerNorm")
            ffn = self.linear(gelu(self.linear(x, f"{layer}.intermediate.dense")), f"{layer}.output.dense")
            x = self.norm(x + ffn, f"{layer}.output.LayerNorm")
        return x.astype(np.float32)
