"""A corpus of malformed and hostile ONNX files: each gets ONE line `sparsescope: error: ...` and exit 2,
names the op/node when there is one, writes nothing, and never opens a file outside the model's folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from onnx_models import export, node, onnx_model, save
from sparsescope.cli import main

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _OPENED is not None and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def _good(tmp: Path) -> Path:
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    return export(m, torch.zeros(1, 2, 3), tmp / "good.onnx", dynamo=False)


def _gemm(w=None, b=None, in_shape=(1, 3), **kw):
    w = np.ones((2, 3)) if w is None else w
    b = np.zeros(2) if b is None else b
    return onnx_model([node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)], {"w": w, "b": b}, in_shape, **kw)


def _external(tmp: Path, location: str) -> Path:
    from onnx import TensorProto

    m = _gemm()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("double_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(2 * 3 * 8))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return save(m, tmp / "ext.onnx")


def case_truncated(tmp):
    data = _good(tmp).read_bytes()
    p = tmp / "truncated.onnx"
    p.write_bytes(data[: len(data) // 2])
    return p, "truncated.onnx"


def case_truncated_tail(tmp):
    data = _good(tmp).read_bytes()
    p = tmp / "tail.onnx"
    p.write_bytes(data[:-7])
    return p, "tail.onnx"


def case_empty(tmp):
    p = tmp / "empty.onnx"
    p.write_bytes(b"")
    return p, "is empty"


def case_not_onnx(tmp):
    p = tmp / "text.onnx"
    p.write_text("this is not a model\n" * 20)
    return p, "text.onnx"


def case_wrong_opset_old(tmp):
    return save(_gemm(opset=3), tmp / "old.onnx"), "opset 3 is not supported"


def case_wrong_opset_new(tmp):
    return save(_gemm(opset=999), tmp / "new.onnx"), "opset 999 is not supported"


def case_huge_input(tmp):
    return save(_gemm(in_shape=(1, 100_000, 100_000)), tmp / "huge_in.onnx"), "more than the"


def case_huge_initializer(tmp):
    from onnx import numpy_helper

    m = _gemm()
    t = numpy_helper.from_array(np.zeros(4), "big")
    del t.dims[:]
    t.dims.extend([1 << 20, 1 << 20])
    m.graph.initializer.append(t)
    return save(m, tmp / "huge_init.onnx"), "'big' declares shape"


def case_shape_lies(tmp):
    from onnx import numpy_helper

    m = _gemm()
    t = numpy_helper.from_array(np.zeros(4), "liar")
    del t.dims[:]
    t.dims.extend([3, 3])
    m.graph.initializer.append(t)
    return save(m, tmp / "liar.onnx"), "holds 4"


def case_external_parent(tmp):
    (tmp.parent / "secret.bin").write_bytes(b"\0" * 48)
    return _external(tmp, "../secret.bin"), "leaves the model's folder"


def case_external_absolute(tmp):
    return _external(tmp, "/etc/passwd"), "leaves the model's folder"


def case_external_symlink(tmp):
    outside = tmp.parent / "outside.bin"
    outside.write_bytes(b"\0" * 48)
    (tmp / "link.bin").symlink_to(outside)
    return _external(tmp, "link.bin"), "leaves the model's folder"


def case_external_missing(tmp):
    return _external(tmp, "nothere.bin"), "missing"


def case_external_short(tmp):
    (tmp / "short.bin").write_bytes(b"\0" * 10)
    return _external(tmp, "short.bin"), "shorter"


def case_unsupported_op(tmp):
    nodes = [node("Gemm", ["x", "w", "b"], ["h"], name="fc1", transB=1), node("Softmax", ["h"], ["y"], name="probs")]
    m = onnx_model(nodes, {"w": np.ones((2, 3)), "b": np.zeros(2)}, (1, 3))
    return save(m, tmp / "softmax.onnx"), "node 'probs' (Softmax): op Softmax is not supported"


def case_custom_domain(tmp):
    from onnx import helper

    m = _gemm()
    m.graph.node.append(helper.make_node("Fancy", ["y"], ["z"], name="mine", domain="com.example"))
    m.graph.output[0].name = "z"
    return save(m, tmp / "domain.onnx"), "node 'mine' (Fancy): operator domain 'com.example'"


def case_nan_weights(tmp):
    w = np.ones((2, 3))
    w[1, 2] = np.nan
    return save(_gemm(w=w), tmp / "nan.onnx"), "node 'fc' (Gemm): weight 'w' has NaN"


def case_inf_bias(tmp):
    return save(_gemm(b=np.array([0.0, np.inf])), tmp / "inf.onnx"), "bias 'b' has NaN or infinite"


def case_shape_mismatch(tmp):
    return save(_gemm(w=np.ones((2, 5))), tmp / "mismatch.onnx"), "node 'fc' (Gemm): weight 'w' of shape [5, 2]"


def case_skip_connection(tmp):
    nodes = [node("Gemm", ["x", "w", "b"], ["h"], name="fc1", transB=1), node("Add", ["h", "x"], ["y"], name="skip")]
    m = onnx_model(nodes, {"w": np.ones((3, 3)), "b": np.zeros(3)}, (1, 3))
    return save(m, tmp / "skip.onnx"), "node 'skip' (Add)"


def case_branch(tmp):
    nodes = [node("Relu", ["x"], ["r"], name="r1"), node("Relu", ["x"], ["y"], name="r2")]
    return save(onnx_model(nodes, {}, (1, 3)), tmp / "branch.onnx"), "node 'r2' (Relu): reads a tensor"


def case_two_inputs(tmp):
    from onnx import TensorProto, helper

    extra = helper.make_tensor_value_info("x2", TensorProto.DOUBLE, [1, 3])
    return save(_gemm(extra_inputs=[extra]), tmp / "two.onnx"), "2 inputs"


def case_dynamic_feature_axis(tmp):
    return save(_gemm(in_shape=("N", "F")), tmp / "dyn.onnx"), "axis 1 has no fixed size ('F')"


def case_fixed_batch(tmp):
    return save(_gemm(in_shape=(8, 3)), tmp / "batch8.onnx"), "fixed batch of 8"


def case_bad_reshape(tmp):
    nodes = [node("Reshape", ["x", "s"], ["r"], name="rs"), node("Gemm", ["r", "w", "b"], ["y"], name="fc", transB=1)]
    m = onnx_model(nodes, {"s": np.array([-1, -1]), "w": np.ones((2, 3)), "b": np.zeros(2)}, (1, 3))
    return save(m, tmp / "reshape.onnx"), "node 'rs' (Reshape): shape [-1, -1] has more than one -1"


def case_allowzero_zero(tmp):
    nodes = [node("Reshape", ["x", "s"], ["r"], name="rs", allowzero=1),
             node("Gemm", ["r", "w", "b"], ["y"], name="fc", transB=1)]
    m = onnx_model(nodes, {"s": np.array([0, 3]), "w": np.ones((2, 3)), "b": np.zeros(2)}, (1, 3))
    return save(m, tmp / "allowzero.onnx"), "allowzero=1 makes 0 a size"


def case_out_of_order(tmp):
    m = _gemm()
    m.graph.node[0].input[0] = "later"
    return save(m, tmp / "order.onnx"), "reads 'later' before any node makes it"


def case_output_not_computed(tmp):
    m = _gemm()
    m.graph.output[0].name = "w"
    return save(m, tmp / "constout.onnx"), "is not the last tensor computed"


def case_int_input(tmp):
    from onnx import TensorProto

    m = _gemm()
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64
    return save(m, tmp / "int.onnx"), "not a float tensor"


def case_string_initializer(tmp):
    from onnx import helper, TensorProto

    m = _gemm()
    m.graph.initializer.append(helper.make_tensor("s", TensorProto.STRING, [1], [b"x"]))
    return save(m, tmp / "string.onnx"), "element type 8"


def case_directory(tmp):
    d = tmp / "dir.onnx"
    d.mkdir()
    return d, "is not a file"


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_onnx_file_is_one_clear_line(tmp_path, capsys, name):
    global _OPENED
    folder = tmp_path / "model"
    folder.mkdir()
    path, expect = CASES[name](folder)
    capsys.readouterr()
    out = tmp_path / "out.json"
    _OPENED = []
    try:
        rc = main(["graph", str(path), "--format", "json", "-o", str(out)])
    finally:
        opened, _OPENED = _OPENED, None
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("sparsescope: error: ") and err.count("\n") == 1, err
    assert expect in err, err
    assert not out.exists()
    base = os.path.realpath(folder)
    outside = [p for p in opened if p.startswith(str(tmp_path)) and not os.path.realpath(p).startswith(base + os.sep)
               and os.path.realpath(p) != base]
    assert not outside, f"opened files outside the model's folder: {outside}"


def test_external_data_inside_the_folder_is_read(tmp_path):
    """The legitimate case of the corpus' external-data files: a weight file beside the model."""
    from sparsescope.graph import evaluate
    from sparsescope.interop import from_onnx

    w = np.arange(6, dtype=np.float64).reshape(2, 3) - 2.5
    (tmp_path / "w.bin").write_bytes(w.astype("<f8").tobytes())
    g = from_onnx(_external(tmp_path, "w.bin"))
    x = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_allclose(evaluate(g, x).post["out"], x @ w.T, rtol=0, atol=1e-12)
