"""tinygrad_cnn.onnx against runtimes no one here wrote: every layer of nn and the model zoo exported, checked by
onnx.checker (full_check) and run in onnxruntime (float32, 1e-4 relative); export -> load -> export gives the
same graph and weights; a loaded model trains like the original; the batch axis is dynamic."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import tinygrad_cnn.functional as F  # noqa: E402
from tinygrad_cnn import Tensor, cat, manual_seed, nn, optim  # noqa: E402
from tinygrad_cnn.models import alexnet, lenet5, vgg16  # noqa: E402
from tinygrad_cnn.onnx import OnnxExportError, export, load  # noqa: E402

RTOL = 1e-4
CONSTANT_NAMES = ("const", "shape", "half", "one", "c", "ones", "zeros", "exponent", "pads", "pad_value", "axes",
                  "starts", "ends", "steps", "indices", "condition")


def run_ort(path: str, *inputs: np.ndarray) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, inputs)))


def ours(model: nn.Module, *inputs: np.ndarray) -> np.ndarray:
    model.eval()
    return model(*[Tensor(x) for x in inputs]).data


def assert_agrees(actual: np.ndarray, expected: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(expected).max()) if expected.size else 1.0)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


def canonical(proto: object) -> tuple[list, dict]:
    """The graph with values renamed in order of appearance, and the initializers by (renamed) name."""
    graph = proto.graph
    names: dict[str, str] = {}

    def rename(n: str) -> str:
        return names.setdefault(n, f"v{len(names)}") if n else ""
    for i in graph.input:
        rename(i.name)
    nodes = []
    for node in graph.node:
        ins = [rename(n) for n in node.input]
        attrs = sorted((a.name, onnx.helper.get_attribute_value(a)) for a in node.attribute)
        nodes.append((node.op_type, ins, [rename(n) for n in node.output], repr(attrs)))
    inits = {rename(t.name): onnx.numpy_helper.to_array(t) for t in graph.initializer}
    return nodes, inits


def check_model(model: nn.Module, x: np.ndarray, tmp_path: object, name: str = "m", round_trip: bool = True,
                other_batch: int = 5, **kwargs: object) -> object:
    """Export, run in onnxruntime at the example's batch and at `other_batch`, load, and export again."""
    path = tmp_path / f"{name}.onnx"
    proto = export(model, x, path, **kwargs)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert_agrees(run_ort(path, x)[0], ours(model, x))
    if other_batch and kwargs.get("dynamic_batch", True):
        xb = np.random.default_rng(7).standard_normal((other_batch, *x.shape[1:])).astype(x.dtype)
        assert_agrees(run_ort(path, xb)[0], ours(model, xb))
    if round_trip:
        loaded = load(path)
        assert_agrees(ours(loaded, x), ours(model, x))
        again = export(loaded, x, tmp_path / f"{name}_again.onnx", **kwargs)
        first, second = canonical(proto), canonical(again)
        assert first[0] == second[0]
        assert first[1].keys() == second[1].keys()
        for key in first[1]:
            np.testing.assert_array_equal(first[1][key], second[1][key])
        parameters = [t.name for t in proto.graph.initializer if not t.name.startswith(CONSTANT_NAMES)]
        assert parameters == [t.name for t in again.graph.initializer if not t.name.startswith(CONSTANT_NAMES)]
    return proto


def image(n: int = 2, c: int = 3, h: int = 9, w: int = 9, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)


def trained_batchnorm(layer: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """Running statistics that are not the initial 0/1, and affine parameters that are not 1/0."""
    layer.train()
    for k in range(3):
        layer(Tensor(np.random.default_rng(k).standard_normal(shape).astype(np.float32) * 2 + 1))
    if layer.weight is not None:
        layer.weight.data[...] = np.linspace(0.5, 1.5, layer.weight.shape[0], dtype=np.float32)
        layer.bias.data[...] = np.linspace(-0.3, 0.3, layer.bias.shape[0], dtype=np.float32)
    return layer.eval()


def _layers() -> list[tuple[str, object, tuple[int, ...]]]:
    return [
        ("conv", lambda: nn.Conv2d(3, 4, 3), (2, 3, 9, 9)),
        ("conv_stride_pad", lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 9, 9)),
        ("conv_dilation", lambda: nn.Conv2d(3, 4, 3, dilation=2, padding=2), (2, 3, 9, 9)),
        ("conv_groups", lambda: nn.Conv2d(4, 6, 3, groups=2, bias=False), (2, 4, 9, 9)),
        ("conv_depthwise", lambda: nn.Conv2d(4, 4, (3, 1), stride=(2, 1), padding=(1, 0), groups=4), (2, 4, 9, 8)),
        ("conv_same_even", lambda: nn.Conv2d(3, 2, 4, padding="same"), (2, 3, 9, 9)),
        ("conv_reflect", lambda: nn.Conv2d(3, 2, 3, padding=1, padding_mode="reflect"), (2, 3, 6, 7)),
        ("conv_circular", lambda: nn.Conv2d(3, 2, 3, padding=(2, 1), padding_mode="circular"), (2, 3, 6, 7)),
        ("conv_replicate", lambda: nn.Conv2d(3, 2, 3, padding=1, padding_mode="replicate"), (2, 3, 6, 7)),
        ("conv_transpose", lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
         (2, 3, 5, 5)),
        ("conv_transpose_groups", lambda: nn.ConvTranspose2d(4, 6, 3, groups=2, dilation=2, bias=False),
         (2, 4, 5, 5)),
        ("linear", lambda: nn.Linear(7, 5), (3, 7)),
        ("linear_no_bias", lambda: nn.Linear(7, 5, bias=False), (3, 7)),
        ("linear_3d", lambda: nn.Linear(7, 5), (3, 4, 7)),
        ("flatten", lambda: nn.Flatten(), (2, 3, 4, 5)),
        ("flatten_middle", lambda: nn.Flatten(1, 2), (2, 3, 4, 5)),
        ("unflatten", lambda: nn.Unflatten(1, (3, 4)), (2, 12, 5)),
        ("batchnorm2d", lambda: trained_batchnorm(nn.BatchNorm2d(3), (4, 3, 5, 5)), (2, 3, 5, 5)),
        ("batchnorm2d_no_affine", lambda: trained_batchnorm(nn.BatchNorm2d(3, affine=False), (4, 3, 5, 5)),
         (2, 3, 5, 5)),
        ("batchnorm1d", lambda: trained_batchnorm(nn.BatchNorm1d(6), (8, 6)), (3, 6)),
        ("batchnorm1d_3d", lambda: trained_batchnorm(nn.BatchNorm1d(4), (5, 4, 7)), (3, 4, 7)),
        ("dropout", lambda: nn.Sequential(nn.Linear(5, 5), nn.Dropout(0.3)), (2, 5)),
        ("dropout2d", lambda: nn.Sequential(nn.Conv2d(3, 3, 1), nn.Dropout2d(0.3)), (2, 3, 4, 4)),
        ("identity", lambda: nn.Sequential(nn.Identity(), nn.Linear(4, 3)), (2, 4)),
        ("relu", lambda: nn.ReLU(), (2, 3, 4, 4)),
        ("leaky_relu", lambda: nn.LeakyReLU(0.2), (2, 3, 4, 4)),
        ("sigmoid", lambda: nn.Sigmoid(), (2, 3, 4, 4)),
        ("tanh", lambda: nn.Tanh(), (2, 3, 4, 4)),
        ("gelu", lambda: nn.GELU(), (2, 3, 4, 4)),
        ("gelu_tanh", lambda: nn.GELU("tanh"), (2, 3, 4, 4)),
        ("silu", lambda: nn.SiLU(), (2, 3, 4, 4)),
        ("upsample", lambda: nn.Upsample(scale_factor=2), (2, 3, 4, 4)),
        ("upsample_size", lambda: nn.Upsample(size=(5, 7)), (2, 3, 4, 4)),
        ("zero_pad", lambda: nn.ZeroPad2d((1, 2, 0, 1)), (2, 3, 4, 4)),
        ("constant_pad", lambda: nn.ConstantPad2d(1, 0.5), (2, 3, 4, 4)),
        ("reflection_pad", lambda: nn.ReflectionPad2d((2, 1, 1, 2)), (2, 3, 4, 4)),
        ("replication_pad", lambda: nn.ReplicationPad2d(2), (2, 3, 4, 4)),
        ("circular_pad", lambda: nn.CircularPad2d((1, 0, 2, 1)), (2, 3, 4, 4)),
        ("softmax", lambda: nn.Softmax(dim=1), (3, 6)),
        ("log_softmax", lambda: nn.LogSoftmax(dim=-1), (3, 6)),
        ("log_softmax_dim1_4d", lambda: nn.LogSoftmax(dim=1), (2, 3, 4, 4)),
        ("max_pool", lambda: nn.MaxPool2d(2), (2, 3, 8, 8)),
        ("max_pool_pad_stride", lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 9, 9)),
        ("max_pool_ceil", lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True), (2, 3, 8, 8)),
        ("max_pool_ceil_pad", lambda: nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True), (2, 3, 7, 7)),
        ("avg_pool", lambda: nn.AvgPool2d(2), (2, 3, 8, 8)),
        ("avg_pool_pad", lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 3, 9, 9)),
        ("avg_pool_pad_exclude", lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
         (2, 3, 9, 9)),
        ("avg_pool_ceil", lambda: nn.AvgPool2d(3, stride=2, ceil_mode=True), (2, 3, 8, 8)),
        ("avg_pool_ceil_exclude", lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
         (2, 3, 8, 8)),
        ("avg_pool_divisor", lambda: nn.AvgPool2d(2, divisor_override=3), (2, 3, 8, 8)),
        ("adaptive_avg_pool_1", lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 7, 5)),
        ("adaptive_avg_pool_3", lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
        ("adaptive_avg_pool_same", lambda: nn.Sequential(nn.Conv2d(3, 3, 1), nn.AdaptiveAvgPool2d(4)), (2, 3, 4, 4)),
        ("module_list", lambda: _Listed(), (2, 4)),
        ("module_dict", lambda: _Dict(), (2, 4)),
    ]


class _Listed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class _Dict(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.parts = nn.ModuleDict({"a": nn.Linear(4, 3), "b": nn.Sigmoid()})

    def forward(self, x: Tensor) -> Tensor:
        return self.parts["b"](self.parts["a"](x))


@pytest.mark.parametrize("name,make,shape", _layers(), ids=[case[0] for case in _layers()])
def test_every_layer_exports_runs_in_onnxruntime_and_round_trips(name: str, make: object, shape: tuple[int, ...],
                                                                   tmp_path: object) -> None:
    manual_seed(0)
    model = make()
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    check_model(model, x, tmp_path, name)


def test_the_layers_are_written_as_their_onnx_operators(tmp_path: object) -> None:
    manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), trained_batchnorm(nn.BatchNorm2d(4), (4, 4, 6, 6)),
                          nn.LeakyReLU(0.1), nn.MaxPool2d(2, ceil_mode=True), nn.AvgPool2d(1), nn.Sigmoid(),
                          nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(), nn.Linear(4, 3),
                          nn.GELU(), nn.LogSoftmax(dim=1))
    proto = check_model(model, image(h=7, w=7), tmp_path)
    assert [n.op_type for n in proto.graph.node] == [
        "Conv", "BatchNormalization", "LeakyRelu", "MaxPool", "AveragePool", "Sigmoid", "Tanh", "GlobalAveragePool",
        "Flatten", "Gemm", "Mul", "Mul", "Erf", "Add", "Mul", "LogSoftmax", "Identity"]
    bn = next(n for n in proto.graph.node if n.op_type == "BatchNormalization")
    assert list(bn.input)[1:] == ["1.weight", "1.bias", "1.running_mean", "1.running_var"]
    assert [n.op_type for n in export(model, image(h=7, w=7), None, opset=20).graph.node][10] == "Gelu"


def test_functional_log_softmax_is_one_node_and_softmax_too(tmp_path: object) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 4)

        def forward(self, x: Tensor) -> Tensor:
            return F.log_softmax(self.fc(x), dim=1) + F.softmax(self.fc(x), dim=-1)

    manual_seed(0)
    proto = check_model(Net(), np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32), tmp_path,
                        round_trip=False)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("LogSoftmax") == 1 and ops.count("Softmax") == 1 and "Exp" not in ops


@pytest.mark.parametrize("opset", [13, 17, 18, 21])
def test_opsets(opset: int, tmp_path: object) -> None:
    manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 5),
                          nn.Softmax(dim=1))
    proto = check_model(model, image(h=8, w=8), tmp_path, opset=opset)
    assert proto.opset_import[0].version == opset


def test_primitive_level_ops_in_a_custom_forward(tmp_path: object) -> None:
    """What a hand-written forward records: arithmetic with constants, reductions, reshape/permute/indexing,
    padding, concatenation, powers."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.scale = nn.Parameter(np.full((1, 4, 1, 1), 0.5, dtype=np.float32))

        def forward(self, x: Tensor) -> Tensor:
            y = self.conv(x) * self.scale + 1.0
            y = (y - y.mean((2, 3), keepdim=True)) / 3.0
            y = y.pad(((0, 0), (0, 0), (1, 0), (0, 2)), value=0.5)[:, 1:3, ::2, 1:]
            z = y.permute(0, 2, 3, 1).reshape(y.shape[0], -1)
            z = z.sigmoid() * z.tanh() + (z ** 2).exp().log() - (z * z + 1.0).sqrt() + z.sum(1, keepdim=True)
            return F.relu(cat([z, -z], dim=1))

    manual_seed(0)
    check_model(Net(), image(), tmp_path)


def test_models_lenet_alexnet_vgg16_agree_with_onnxruntime(tmp_path: object) -> None:
    manual_seed(0)
    for name, model, x in (("lenet5", lenet5(), image(1, 1, 28, 28)), ("alexnet", alexnet(), image(1, 3, 224, 224)),
                           ("vgg16", vgg16(), image(1, 3, 224, 224))):
        path = tmp_path / f"{name}.onnx"
        export(model, x, path)
        expected = ours(model, x)
        assert_agrees(run_ort(path, x)[0], expected)
        if name == "lenet5":
            check_model(model, x, tmp_path, "lenet_round_trip")


def test_dynamic_batch_and_a_fixed_one(tmp_path: object) -> None:
    manual_seed(0)
    model = lenet5()
    one = image(1, 1, 28, 28)
    path = tmp_path / "dynamic.onnx"
    proto = export(model, one, path)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    five = image(5, 1, 28, 28, seed=3)
    assert_agrees(run_ort(path, five)[0], ours(model, five))
    fixed = export(model, one, tmp_path / "fixed.onnx", dynamic_batch=False)
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    assert_agrees(run_ort(tmp_path / "fixed.onnx", one)[0], ours(model, one))


def test_names_and_several_inputs_and_outputs(tmp_path: object) -> None:
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(4, 2)

        def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
            s = self.a(x) + self.b(y)
            return s, s.relu()

    manual_seed(0)
    model = Two()
    x, y = (np.random.default_rng(k).standard_normal((2, n)).astype(np.float32) for k, n in ((0, 3), (1, 4)))
    path = tmp_path / "two.onnx"
    proto = export(model, (x, y), path, input_names=["x", "y"], output_names=["sum", "relu"])
    assert [i.name for i in proto.graph.input] == ["x", "y"]
    assert [o.name for o in proto.graph.output] == ["sum", "relu"]
    got = run_ort(path, x, y)
    want = model(Tensor(x), Tensor(y))
    for g, w in zip(got, want):
        assert_agrees(g, w.data)
    loaded = load(path)
    for g, w in zip(loaded(Tensor(x), Tensor(y)), want):
        assert_agrees(g.data, w.data)


def _train(model: nn.Module, steps: int, bn_train: bool = False) -> list[float]:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train(bn_train)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_a_loaded_model_trains_like_the_original(tmp_path: object) -> None:
    manual_seed(0)
    original = lenet5()
    path = tmp_path / "lenet.onnx"
    export(original, image(1, 1, 28, 28), path)
    loaded = load(path)
    assert list(loaded.state_dict()) == list(original.state_dict())
    assert all(isinstance(p, nn.Parameter) for p in loaded.parameters())
    reference = copy.deepcopy(original)
    theirs, mine = _train(reference, 6), _train(loaded, 6)
    assert mine[-1] < mine[0]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    for (name, p), (name2, q) in zip(loaded.named_parameters(), reference.named_parameters()):
        assert name == name2
        np.testing.assert_allclose(p.data, q.data, rtol=1e-4, atol=1e-6)
    # the fine-tuned weights load back into the model class they came from
    fresh = lenet5()
    fresh.load_state_dict(loaded.state_dict())
    assert_agrees(ours(fresh, image(2, 1, 28, 28)), ours(loaded, image(2, 1, 28, 28)))


def test_a_loaded_batchnorm_model_trains_its_statistics_like_the_original(tmp_path: object) -> None:
    manual_seed(0)
    original = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 4, 5, stride=2)), ("bn", nn.BatchNorm2d(4)),
                                          ("relu", nn.ReLU()), ("flat", nn.Flatten()), ("fc", nn.Linear(576, 10))]))
    trained_batchnorm(original.bn, (4, 4, 12, 12))
    path = tmp_path / "bn.onnx"
    export(original, image(1, 1, 28, 28), path)
    loaded = load(path)
    assert set(loaded.state_dict()) == set(original.state_dict())
    reference = copy.deepcopy(original)
    np.testing.assert_allclose(_train(loaded, 4, bn_train=True), _train(reference, 4, bn_train=True), rtol=1e-5)
    np.testing.assert_allclose(loaded.bn.running_mean.data, reference.bn.running_mean.data, rtol=1e-5)
    np.testing.assert_allclose(loaded.bn.running_var.data, reference.bn.running_var.data, rtol=1e-5)


# ---- what cannot be exported -------------------------------------------------------------------------------
def test_a_data_dependent_constant_is_refused_with_the_line(tmp_path: object) -> None:
    class Leaky(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return F.leaky_relu(x, 0.2)  # a mask computed from x's values

    path = tmp_path / "never.onnx"
    with pytest.raises(OnnxExportError, match=r"depends on the input.*test_onnx\.py:\d+: .*leaky_relu") as e:
        export(Leaky(), image(), path)
    assert "op 'Mul'" in str(e.value)
    assert not path.exists()


def test_an_op_without_onnx_counterpart_names_op_module_and_line(tmp_path: object) -> None:
    from tinygrad_cnn.autograd import Function

    class Cube(Function):
        @staticmethod
        def forward(ctx: object, x: np.ndarray) -> np.ndarray:
            return x ** 3

        @staticmethod
        def backward(ctx: object, grad: Tensor) -> Tensor:
            return grad * 3 * ctx.inputs[0] ** 2

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 3))

        def forward(self, x: Tensor) -> Tensor:
            return Cube.apply(self.body(x))

    with pytest.raises(OnnxExportError, match=r"op 'Cube' has no ONNX counterpart.*test_onnx\.py:\d+: .*Cube\.apply"):
        export(Net(), np.ones((2, 3), np.float32), tmp_path / "x.onnx")


def test_a_reshape_that_bakes_the_batch_is_refused_unless_the_batch_is_fixed(tmp_path: object) -> None:
    class Net(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x.reshape(3, -1)  # 3 rows whatever the batch: its size is baked in

    with pytest.raises(OnnxExportError, match="batch"):
        export(Net(), image(), tmp_path / "x.onnx")
    path = tmp_path / "fixed.onnx"
    export(Net(), image(), path, dynamic_batch=False)
    assert_agrees(run_ort(path, image())[0], ours(Net(), image()))


def test_export_arguments_are_checked(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="opset"):
        export(lenet5(), image(1, 1, 28, 28), tmp_path / "x.onnx", opset=9)
    with pytest.raises(TypeError, match="floating-point"):
        export(lenet5(), np.ones((1, 1, 28, 28), np.int64), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="input_names"):
        export(lenet5(), image(1, 1, 28, 28), tmp_path / "x.onnx", input_names=["a", "b"])


def test_export_restores_training_mode_and_replaces_the_file_atomically(tmp_path: object) -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout())
    model.train()
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    export(model, np.ones((2, 3), np.float32), path)
    assert model.training and model[1].training
    assert onnx.load(str(path)).graph.node
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


# ---- what load refuses -----------------------------------------------------------------------------------
def _tiny_model(op: str = "Relu", domain: str = "") -> object:
    h = onnx.helper
    node = h.make_node(op, ["x"], ["y"], name="the_node", domain=domain)
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])])
    imports = [h.make_opsetid("", 17)] + ([h.make_opsetid(domain, 1)] if domain else [])
    return h.make_model(graph, opset_imports=imports)


def test_load_names_an_unsupported_op_and_its_node(tmp_path: object) -> None:
    path = tmp_path / "sin.onnx"
    path.write_bytes(_tiny_model("Sin").SerializeToString())
    with pytest.raises(ValueError, match="node 'the_node' uses the ONNX op Sin"):
        load(path)
    path.write_bytes(_tiny_model("Crazy", "com.example").SerializeToString())
    with pytest.raises(ValueError, match="the_node.*Crazy.*com.example"):
        load(path)
    path.write_bytes(_tiny_model("Relu").SerializeToString())
    assert load(path)(Tensor(np.array([-1.0, 2.0], np.float32))).data.tolist() == [0.0, 2.0]


def test_load_refuses_corrupt_and_crafted_files(tmp_path: object) -> None:
    from tinygrad_cnn.onnx import OnnxLoadError

    good = tmp_path / "good.onnx"
    export(lenet5(), image(1, 1, 28, 28), good)
    data = good.read_bytes()
    cases = {"garbage": b"\x00\xffnot an onnx file at all" * 10, "empty": b"", "truncated": data[: len(data) // 2],
             "text": b"ir_version: 8\n"}
    for name, content in cases.items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(content)
        with pytest.raises(OnnxLoadError):
            load(path)
    with pytest.raises(OnnxLoadError, match="directory"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.onnx")
    # an initializer whose data lives in another file: never read
    model = onnx.load(str(good))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    path = tmp_path / "external.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(OnnxLoadError, match="external data"):
        load(path)


def test_byte_flips_give_clear_errors_or_a_working_model(tmp_path: object) -> None:
    from tinygrad_cnn.onnx import OnnxLoadError

    path = tmp_path / "m.onnx"
    export(nn.Sequential(nn.Linear(3, 2), nn.ReLU()), np.ones((1, 3), np.float32), path)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for k in range(60):
        flipped = bytearray(data)
        for i in rng.integers(0, len(data), 3):
            flipped[i] ^= int(rng.integers(1, 256))
        target = tmp_path / f"f{k}.onnx"
        target.write_bytes(bytes(flipped))
        try:
            model = load(target)
        except OnnxLoadError:
            continue
        try:
            model(Tensor(np.ones((1, 3), np.float32)))
        except (ValueError, TypeError, RuntimeError, IndexError, KeyError):
            pass


def test_missing_onnx_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'tinygrad_cnn\[interop\]'"):
        export(lenet5(), image(1, 1, 28, 28), None)
    with pytest.raises(ImportError, match=r"pip install 'tinygrad_cnn\[interop\]'"):
        load("whatever.onnx")


def test_importing_the_package_does_not_import_onnx() -> None:
    import subprocess
    import sys

    code = "import sys, tinygrad_cnn, tinygrad_cnn.onnx; assert 'onnx' not in sys.modules, 'onnx imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_onnx_docs_examples_run(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/interop.md's ONNX section: its python blocks, in order in one namespace."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "interop.md").read_text()
    section = text[text.index("## ONNX"):]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "docs/interop.md", "exec"), scope)
    assert scope["loss"].item() > 0 and (tmp_path / "lenet5.onnx").is_file()


@pytest.mark.parametrize("forward", [lambda x: x.clamp(-0.5, 0.5), lambda x: x.maximum(x * 0.5)],
                         ids=["clamp", "maximum"])
def test_other_data_dependent_composites_are_refused(forward: object, tmp_path: object) -> None:
    class Net(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return forward(x)

    with pytest.raises(OnnxExportError, match="depends on the input"):
        export(Net(), image(), tmp_path / "x.onnx")


def test_sigmoid_and_tanh_are_primitives_that_export(tmp_path: object) -> None:
    class Net(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x.sigmoid() + x.tanh() + F.sigmoid(x) * F.tanh(x)

    proto = check_model(Net(), image(), tmp_path, round_trip=False)
    assert [n.op_type for n in proto.graph.node] == ["Sigmoid", "Tanh", "Add", "Sigmoid", "Tanh", "Mul", "Add",
                                                     "Identity"]


def test_a_file_exported_by_pytorch_loads_and_agrees_with_pytorch(tmp_path: object) -> None:
    """A file no one here wrote: PyTorch's TorchScript-based exporter (BatchNorm folded into the Conv,
    torch's initializer names), loaded and run here against PyTorch's own output."""
    import warnings

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tn = torch.nn
    net = tn.Sequential(tn.Conv2d(1, 6, 5, padding=2), tn.BatchNorm2d(6), tn.ReLU(), tn.MaxPool2d(2, ceil_mode=True),
                        tn.Conv2d(6, 16, 5, groups=2, stride=2), tn.AvgPool2d(2, padding=1, count_include_pad=False),
                        tn.Flatten(), tn.Linear(144, 10), tn.LogSoftmax(1)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_()
        net[1].running_var.uniform_(0.5, 2)
    x = torch.randn(3, 1, 28, 28)
    path = tmp_path / "torch.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["input"],
                              dynamic_axes={"input": {0: "batch"}}, opset_version=17)
    except Exception as e:  # this torch build cannot export (e.g. the legacy exporter removed)
        pytest.skip(f"torch.onnx.export failed: {e}")
    loaded = load(path)
    with torch.no_grad():
        expected = net(x).numpy()
    assert_agrees(ours(loaded, x.numpy()), expected)
    assert {"7.weight", "7.bias"} <= set(loaded.state_dict())


def test_frozen_parameters_and_buffers_keep_their_kind_through_a_round_trip(tmp_path: object) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.fc.bias.requires_grad = False  # frozen: still a parameter
            self.register_buffer("shift", Tensor(np.arange(3, dtype=np.float32)))
            self.register_buffer("scale", Tensor(np.full(3, 2.0, np.float32)), persistent=False)

        def forward(self, x: Tensor) -> Tensor:
            return self.fc(x) * self.scale + self.shift

    model = Net()
    check_model(model, np.ones((2, 3), np.float32), tmp_path)
    loaded = load(tmp_path / "m.onnx")
    assert [n for n, _ in loaded.named_parameters()] == ["fc.weight", "fc.bias"]
    assert list(loaded.state_dict()) == list(model.state_dict()) == ["shift", "fc.weight", "fc.bias"]
    assert not isinstance(loaded.shift, nn.Parameter)  # the non-persistent buffer is a constant of the graph


def test_a_layer_subclass_with_its_own_forward_is_written_as_what_it_computes(tmp_path: object) -> None:
    class ScaledLinear(nn.Linear):
        def forward(self, x: Tensor) -> Tensor:
            return super().forward(x) * 3.0

    manual_seed(0)
    proto = check_model(nn.Sequential(ScaledLinear(4, 2)), np.ones((2, 4), np.float32), tmp_path, round_trip=False)
    assert "Gemm" not in [n.op_type for n in proto.graph.node]


NOT_LAYERS = {"Module", "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "BCELoss",
              "BCEWithLogitsLoss",  # losses take targets: not exported
              "ELU", "Softplus", "Hardtanh", "ReLU6",  # their branches are masks of the data: no operator mapping yet
              "ParameterList", "ParameterDict"}  # parameter holders, not called


def test_the_layer_cases_cover_every_layer_in_nn() -> None:
    """A layer added to nn needs a case in _layers() (or a reason in NOT_LAYERS)."""
    covered = set()
    for _, make, _ in _layers():
        manual_seed(0)
        covered |= {type(m).__name__ for m in make().modules()}
    layers = {name for name in nn.__all__ if isinstance(getattr(nn, name), type)
              and issubclass(getattr(nn, name), nn.Module)}
    assert layers - NOT_LAYERS - covered == set()


@pytest.mark.parametrize("index", [
    (Ellipsis, slice(None, None, -1)), (slice(None), 1), (slice(None), None, slice(1, None, 2), -1),
    (slice(None), np.array([2, 0, 0])), (Ellipsis, np.array([3, 1]), slice(None, 1)),
    (slice(None), slice(None), slice(-2, None), slice(None, None, -3))],
    ids=["ellipsis_reversed", "int", "none_step_negative_int", "gather", "ellipsis_gather", "negative_steps"])
def test_indexing_exports(index: tuple, tmp_path: object) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x: Tensor) -> Tensor:
            return self.conv(x)[index]

    manual_seed(0)
    check_model(Net(), image(h=5, w=6), tmp_path)


@pytest.mark.parametrize("opset", [13, 18])
def test_reductions_in_a_forward_round_trip_in_both_axes_forms(opset: int, tmp_path: object) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: Tensor) -> Tensor:
            y = self.conv(x)
            return y.amax((2, 3)) + y.sum(dim=(1, 3)).amax(1, keepdim=True) - y.mean(1).amin((1, 2))[:, None]

    manual_seed(0)
    proto = check_model(Net(), image(h=6, w=7), tmp_path, opset=opset)
    assert "ReduceMax" in [n.op_type for n in proto.graph.node]
