"""The fp32 ONNX graph of all-MiniLM-L6-v2, written from the safetensors with ``onnx.helper``.

No torch: the encoder is small and regular enough to spell out node by node. The graph has the
interface ``torch.onnx.export`` gave it (int64 ``input_ids``, ``attention_mask``,
``token_type_ids`` of shape ``[batch, tokens]``; float32 ``last_hidden_state`` of shape
``[batch, tokens, 384]``), and its nodes carry the exporter's names
(``/model/encoder/layer.N/intermediate/dense/MatMul``...), so the int8 quantization plans, which
pick MatMuls by name, select the same nodes. Mean pooling stays outside, in numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.classify.reference import MiniLMWeights, load_minilm

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"


class _Graph:
    """Collects nodes and initializers; every node output is named ``<node name>_output_0``."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, name: str, *inputs: str, output: str | None = None, **attrs: Any) -> str:
        output = output or f"{name}_output_0"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=name, **attrs))
        return output


def _linear(g: _Graph, w: MiniLMWeights, x: str, module: str, scope: str) -> str:
    """torch's Linear as the exporter writes it: MatMul by the transposed weight, then Add the bias."""
    weight = g.const(f"model.{module}.weight.T", w[f"{module}.weight"].T)
    bias = g.const(f"model.{module}.bias", w[f"{module}.bias"])
    return g.op("Add", f"{scope}/Add", g.op("MatMul", f"{scope}/MatMul", x, weight), bias)


def _layer_norm(g: _Graph, w: MiniLMWeights, x: str, module: str, scope: str,
                output: str | None = None) -> str:
    scale, bias = (g.const(f"model.{module}.{p}", w[f"{module}.{p}"]) for p in ("weight", "bias"))
    return g.op("LayerNormalization", f"{scope}/LayerNormalization", x, scale, bias,
                output=output, axis=-1, epsilon=w.eps)


def _encoder_layer(g: _Graph, w: MiniLMWeights, x: str, mask: str, i: int) -> str:
    module, scope = f"encoder.layer.{i}", f"/model/encoder/layer.{i}"
    att = f"{scope}/attention/self"
    size = w.hidden // w.heads
    heads_shape = g.const(f"{att}/heads_shape", [0, 0, w.heads, size], np.int64)
    q, k, v = (g.op("Reshape", f"{att}/Reshape_{n}",
                    _linear(g, w, x, f"{module}.attention.self.{p}", f"{att}/{p}"), heads_shape)
               for n, p in enumerate(("query", "key", "value")))
    q = g.op("Transpose", f"{att}/Transpose", q, perm=[0, 2, 1, 3])    # (batch, heads, tokens, size)
    k = g.op("Transpose", f"{att}/Transpose_2", k, perm=[0, 2, 3, 1])  # (batch, heads, size, tokens)
    v = g.op("Transpose", f"{att}/Transpose_1", v, perm=[0, 2, 1, 3])
    # Scaling the queries costs tokens x size per head, scaling the scores tokens x tokens.
    q = g.op("Mul", f"{att}/Mul", q, g.const(f"{att}/scale", 1.0 / math.sqrt(size)))
    scores = g.op("Add", f"{att}/Add", g.op("MatMul", f"{att}/MatMul", q, k), mask)
    context = g.op("MatMul", f"{att}/MatMul_1", g.op("Softmax", f"{att}/Softmax", scores, axis=-1), v)
    context = g.op("Transpose", f"{att}/Transpose_3", context, perm=[0, 2, 1, 3])
    context = g.op("Reshape", f"{att}/Reshape_3", context,
                   g.const(f"{att}/merge_shape", [0, 0, w.hidden], np.int64))
    out = _linear(g, w, context, f"{module}.attention.output.dense", f"{scope}/attention/output/dense")
    out = g.op("Add", f"{scope}/attention/output/Add", out, x)
    x = _layer_norm(g, w, out, f"{module}.attention.output.LayerNorm", f"{scope}/attention/output/LayerNorm")

    # GELU, erf form, in the exporter's order: x * (erf(x / sqrt 2) + 1) * 0.5.
    act = f"{scope}/intermediate/intermediate_act_fn"
    h = _linear(g, w, x, f"{module}.intermediate.dense", f"{scope}/intermediate/dense")
    erf = g.op("Erf", f"{act}/Erf", g.op("Div", f"{act}/Div", h, g.const(f"{act}/sqrt2", math.sqrt(2.0))))
    h = g.op("Mul", f"{act}/Mul", h, g.op("Add", f"{act}/Add", erf, g.const(f"{act}/one", 1.0)))
    h = g.op("Mul", f"{act}/Mul_1", h, g.const(f"{act}/half", 0.5))
    h = _linear(g, w, h, f"{module}.output.dense", f"{scope}/output/dense")
    out = g.op("Add", f"{scope}/output/Add", h, x)
    last = i == w.layers - 1
    return _layer_norm(g, w, out, f"{module}.output.LayerNorm", f"{scope}/output/LayerNorm",
                       output=OUTPUT if last else None)


def _float_word_lookup(g: _Graph, w: MiniLMWeights) -> str:
    return g.op("Gather", "/model/embeddings/word_embeddings/Gather",
                g.const("model.embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"]),
                "input_ids")


def build_model(w: MiniLMWeights, *, opset: int = 17, name: str = "minilm-l6-v2",
                word_lookup: Callable[[_Graph, MiniLMWeights], str] = _float_word_lookup) -> Any:
    """The ``onnx.ModelProto`` of the encoder (LayerNormalization needs opset 17 or later).

    ``word_lookup`` adds the nodes that turn ``input_ids`` into word vectors ``(batch, tokens,
    hidden)``: a plain Gather by default; a model whose table is kept quantized passes its own."""
    if opset < 17:
        raise ValueError(f"opset {opset}: the graph uses LayerNormalization, which needs opset 17 or later")
    g = _Graph()
    emb = "/model/embeddings"
    x = g.op("Add", f"{emb}/Add", word_lookup(g, w),
             g.op("Gather", f"{emb}/token_type_embeddings/Gather",
                  g.const("model.embeddings.token_type_embeddings.weight",
                          w["embeddings.token_type_embeddings.weight"]), "token_type_ids"))
    # Positions 0..tokens-1 are the first rows of the table: a Slice, no position_ids input.
    tokens = g.op("Shape", f"{emb}/Shape", "input_ids", start=1, end=2)
    positions = g.op("Slice", f"{emb}/position_embeddings/Slice",
                     g.const("model.embeddings.position_embeddings.weight",
                             w["embeddings.position_embeddings.weight"]),
                     g.const(f"{emb}/zero", [0], np.int64), tokens, g.const(f"{emb}/axis0", [0], np.int64))
    x = _layer_norm(g, w, g.op("Add", f"{emb}/Add_1", x, positions), "embeddings.LayerNorm",
                    f"{emb}/LayerNorm")

    # Additive mask (batch, 1, 1, tokens): 0 where attended, the lowest float32 on padding.
    mask = g.op("Unsqueeze", "/model/Unsqueeze", "attention_mask", g.const("/model/axes12", [1, 2], np.int64))
    mask = g.op("Sub", "/model/Sub", g.const("/model/one", 1.0), g.op("Cast", "/model/Cast", mask,
                                                                          to=TensorProto.FLOAT))
    mask = g.op("Mul", "/model/Mul", mask, g.const("/model/lowest", np.finfo(np.float32).min))
    for i in range(w.layers):
        x = _encoder_layer(g, w, x, mask, i)

    dims = ["batch", "tokens"]
    graph = helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info(name, TensorProto.INT64, dims) for name in INPUTS],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [*dims, w.hidden])],
        initializer=g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="newswatch",
                             ir_version=helper.find_min_ir_version_for(opsets))


def write_graph(model_dir: Path, target: Path, *, opset: int = 17) -> dict[str, Any]:
    """Write the fp32 graph of the model in ``model_dir`` to ``target`` (replaced only once the
    written file passes ``onnx.checker``); returns ``{"nodes", "matmul_nodes", "bytes", "opset"}``."""
    model = build_model(load_minilm(model_dir), opset=opset)
    tmp = target.with_name(target.name + ".tmp")
    try:
        onnx.save(model, str(tmp))
        # Checking the file, not the proto, spares a second 90 MB serialisation.
        onnx.checker.check_model(str(tmp), full_check=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    return {"nodes": len(model.graph.node),
            "matmul_nodes": sum(node.op_type == "MatMul" for node in model.graph.node),
            "bytes": target.stat().st_size, "opset": opset}
