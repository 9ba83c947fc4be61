"""tinygrad_cnn.onnx.load on single-node ONNX graphs, the ops export never writes included: each graph is run in
onnxruntime and by the loaded Module, and the gradient flows through the loaded op."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from tinygrad_cnn import Tensor  # noqa: E402
from tinygrad_cnn.onnx import load  # noqa: E402

X = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# (id, op, attributes, constant inputs after X (name -> array, or "" for an omitted optional input), opset)
CASES = [
    ("reduce_mean_attr", "ReduceMean", {"axes": [1, 3], "keepdims": 0}, {}, 13),
    ("reduce_mean_input", "ReduceMean", {"keepdims": 1}, {"axes": i64(-1)}, 18),
    ("reduce_max_attr", "ReduceMax", {"axes": [2]}, {}, 13),
    ("reduce_max_input", "ReduceMax", {"keepdims": 0}, {"axes": i64(0, 2)}, 18),
    ("reduce_min_all", "ReduceMin", {"keepdims": 0}, {}, 18),
    ("reduce_sum", "ReduceSum", {}, {"axes": i64(1)}, 13),
    ("squeeze", "Squeeze", {}, {"axes": i64(0)}, 13),
    ("unsqueeze", "Unsqueeze", {}, {"axes": i64(0, -1)}, 13),
    ("slice", "Slice", {}, {"starts": i64(1, -1), "ends": i64(3, -6), "axes": i64(1, 3), "steps": i64(1, -2)}, 13),
    ("slice_defaults", "Slice", {}, {"starts": i64(0, 1), "ends": i64(1, 100)}, 13),
    ("gather", "Gather", {"axis": 3}, {"indices": i64(4, 0, -1)}, 13),
    ("gather_scalar", "Gather", {"axis": 1}, {"indices": np.asarray(-2, np.int64)}, 13),
    ("clip", "Clip", {}, {"min": np.asarray(-0.5, np.float32), "max": np.asarray(0.7, np.float32)}, 13),
    ("clip_max_only", "Clip", {}, {"min": "", "max": np.asarray(0.2, np.float32)}, 13),
    ("sqrt_of_abs", "Abs", {}, {}, 13),
    ("reciprocal", "Reciprocal", {}, {}, 13),
    ("neg", "Neg", {}, {}, 13),
    ("erf", "Erf", {}, {}, 13),
    ("global_max_pool", "GlobalMaxPool", {}, {}, 13),
    ("global_avg_pool", "GlobalAveragePool", {}, {}, 13),
    ("transpose", "Transpose", {"perm": [0, 2, 3, 1]}, {}, 13),
    ("transpose_default", "Transpose", {}, {}, 13),
    ("softmax_axis1", "Softmax", {"axis": 1}, {}, 13),
    ("log_softmax_last", "LogSoftmax", {}, {}, 13),
    ("flatten_axis2", "Flatten", {"axis": 2}, {}, 13),
    ("flatten_axis0", "Flatten", {"axis": 0}, {}, 13),
    ("reshape_zero", "Reshape", {}, {"shape": i64(0, -1, 5)}, 13),
    ("expand", "Expand", {}, {"shape": i64(3, 1, 1, 1, 1)}, 13),
    ("pad_axes", "Pad", {"mode": "constant"}, {"pads": i64(1, 0, 2, 3), "value": np.asarray(1.5, np.float32),
                                               "axes": i64(1, 3)}, 18),
    ("pad", "Pad", {}, {"pads": i64(0, 0, 1, 1, 0, 0, 1, 1)}, 13),
    ("cast", "Cast", {"to": TensorProto.DOUBLE}, {}, 13),
    ("dropout", "Dropout", {}, {}, 13),
    ("identity", "Identity", {}, {}, 13),
    ("leaky_relu", "LeakyRelu", {"alpha": 0.3}, {}, 13),
    ("gelu_tanh", "Gelu", {"approximate": "tanh"}, {}, 20),
    ("max_pool_asymmetric", "MaxPool", {"kernel_shape": [2, 3], "pads": [0, 1, 1, 0], "strides": [1, 2]}, {}, 13),
    ("max_pool_ceil", "MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, {}, 13),
    ("avg_pool", "AveragePool", {"kernel_shape": [3, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}, {}, 13),
    ("conv_asymmetric_pads", "Conv", {"pads": [0, 1, 2, 1], "strides": [2, 1]},
     {"W": np.random.default_rng(1).standard_normal((4, 3, 3, 2)).astype(np.float32)}, 13),
    ("gemm_trans_a_alpha_beta", "Gemm", {"transA": 1, "alpha": 0.5, "beta": 2.0},
     {"B": np.arange(6, dtype=np.float32).reshape(3, 2) / 10, "C": np.arange(2, dtype=np.float32)}, 13),
    ("where", "Where", {}, {}, 13),
    ("concat", "Concat", {"axis": 2}, {"other": np.ones((2, 3, 1, 5), np.float32)}, 13),
    ("pow_tensor", "Pow", {}, {"e": np.full((5,), 2.0, np.float32)}, 13),
    ("matmul_const", "MatMul", {}, {"w": np.ones((5, 2), np.float32)}, 13),
    ("shape_then_reshape", "Shape", {}, {}, 13),
]


def _graph(op: str, attrs: dict, consts: dict, opset: int, x: np.ndarray, out: object = None) -> onnx.ModelProto:
    """The one-op model; `out`: the output's ValueInfo (onnxruntime runs it without one, onnx.checker wants it)."""
    inputs, inits, nodes = ["x"], [], []
    source = "x"
    if op == "Abs":  # Abs then Sqrt: both ops, a smooth function
        nodes.append(helper.make_node("Abs", ["x"], ["a"]))
        nodes.append(helper.make_node("Sqrt", ["a"], ["y"]))
    elif op == "Gemm":
        nodes.append(helper.make_node("Gemm", ["x", "B", "C"], ["y"], **attrs))
    elif op == "Where":
        cond = numpy_helper.from_array(x > 0, "cond")
        inits.append(cond)
        nodes.append(helper.make_node("Constant", [], ["other"], value=numpy_helper.from_array(np.float32(0.25))))
        nodes.append(helper.make_node("Where", ["cond", "x", "other"], ["y"]))
    elif op == "Shape":
        nodes.append(helper.make_node("Shape", ["x"], ["s"]))
        nodes.append(helper.make_node("Reshape", ["x", "s"], ["y"]))
    else:
        for name, value in consts.items():
            inputs.append(name if isinstance(value, np.ndarray) else "")
        nodes.append(helper.make_node(op, [source] + inputs[1:], ["y"], **attrs))
    for name, value in consts.items():
        if isinstance(value, np.ndarray):
            inits.append(numpy_helper.from_array(value, name))
    graph = helper.make_graph(nodes, op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [out or onnx.ValueInfoProto(name="y")], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_agrees_with_onnxruntime_and_is_differentiable(case: tuple, tmp_path: object) -> None:
    name, op, attrs, consts, opset = case
    x = np.ascontiguousarray(X[0, 0, :3, :4]) if op == "Gemm" else X[:1].copy() if op == "Squeeze" else X
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(_graph(op, attrs, consts, opset, x).SerializeToString())
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    out = helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(expected.dtype), expected.shape)
    path.write_bytes(_graph(op, attrs, consts, opset, x, out).SerializeToString())
    loaded = load(path)
    xt = Tensor(x, requires_grad=True)
    got = loaded(xt)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got.data, expected, rtol=1e-5, atol=1e-6)
    if got.dtype.kind == "f" and got.requires_grad:
        with np.errstate(invalid="ignore"):  # Pow's exponent gradient takes log(x) of negative x: NaN, as torch
            got.sum().backward()
        assert xt.grad is not None and xt.grad.shape == x.shape


def _one_node_file(tmp_path: object, node: object, inits: list, x_shape: list[int]) -> object:
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, x_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("node,inits,shape,message", [
    (helper.make_node("Conv", ["x", "w"], ["y"], name="conv3d"),
     [numpy_helper.from_array(np.ones((1, 1, 2, 2, 2), np.float32), "w")], [1, 1, 4, 4, 4], "conv3d.*2-D"),
    (helper.make_node("MaxPool", ["x"], ["y", "idx"], name="mp", kernel_shape=[2, 2]), [], [1, 1, 4, 4],
     "mp.*Indices"),
    (helper.make_node("Pad", ["x", "p"], ["y"], name="pad", mode="reflect"),
     [numpy_helper.from_array(np.zeros(8, np.int64), "p")], [1, 1, 4, 4], "pad.*reflect"),
    (helper.make_node("Conv", ["x", "w"], ["y"], name="same", auto_pad="SAME_UPPER"),
     [numpy_helper.from_array(np.ones((1, 1, 2, 2), np.float32), "w")], [1, 1, 4, 4], "same.*auto_pad"),
    (helper.make_node("Slice", ["x", "x", "x"], ["y"], name="computed"), [], [2], "computed.*must be a constant"),
], ids=["conv3d", "maxpool_indices", "pad_reflect", "auto_pad", "computed_starts"])
def test_unsupported_uses_name_the_node(node: object, inits: list, shape: list[int], message: str,
                                        tmp_path: object) -> None:
    from tinygrad_cnn.onnx import OnnxLoadError

    with pytest.raises(OnnxLoadError, match=message):
        load(_one_node_file(tmp_path, node, inits, shape))


def test_a_crafted_expand_to_a_huge_shape_is_refused_before_allocating(tmp_path: object) -> None:
    node = helper.make_node("Expand", ["x", "s"], ["y"], name="big")
    path = _one_node_file(tmp_path, node, [numpy_helper.from_array(i64(2 ** 20, 2 ** 20, 1), "s")], [1, 1, 4])
    model = load(path)
    with pytest.raises(ValueError, match="ONNX node 'big' \\(Expand\\).*more than"):
        model(Tensor(np.ones((1, 1, 4), np.float32)))
