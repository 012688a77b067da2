"""Split speechmos's DNSMOS P.835 model (`sig_bak_ovr.onnx`) into trunk, mid and head, with `onnx`.

The model takes [N, 144160] samples (9.01 s at 16 kHz) and is a plain stack:

    frames      x[160 t : 160 t + 320] for t < 900 (two crops, reshaped to [N, 900, 160], concatenated)
    front end   STFT as two 1x1 convolutions (320 -> 161 real / imag), |.|^2, max(., 1e-12), log10
    trunk       four 3x3 convolutions + ReLU at full resolution (900 frames x 161 bins; 1 -> 128 -> 64
                -> 64 -> 32 channels): ~97% of the model's multiply-adds
    mid         2x2 max pool, 3x3 conv + ReLU, 2x2 max pool, 3x3 conv + ReLU: [32, 900, 161] ->
                [32, 225, 40], ~2.5%
    head        2x2 max pool (225 -> 112 frames: it drops the last), 3x3 conv, global max, 3 dense layers

Every frame's features depend on its own 320 samples only, and each 3x3 convolution (zero padding 1)
reaches one frame further each side. The windows speechmos scores start every 16000 samples (100
frames, 25 mid frames), so trunk and mid can run once over the span of several overlapping windows,
and a window's mid output is a slice of the span's, except at its ends, where the per-window model
sees zero padding:
- its first and last EDGE = 4 trunk frames: `trunk` on the 8 frames (EDGE_SAMPLES = 1440 samples) at
  each end of the window gives them exactly;
- its first and last MID_EDGE = 3 mid frames: `mid` on the window's first and last MID_CHUNK = 24 trunk
  frames (with those 4 replaced) gives them exactly.
The head then runs per window; its first max pool is not aligned across windows (25 is odd).

`split_p835` returns serialized ONNX models:
- trunk: "audio" [N, 160 (T + 1)] float32 -> TRUNK_OUT [N, 32, T, 161]
- mid:   TRUNK_OUT [N, 32, T, 161] (T a multiple of 4) -> MID_OUT [N, 32, T / 4, 40]
- head:  MID_OUT [N, 32, 225, 40] -> "Identity:0" [N, 3], the model's raw sig, bak, ovrl
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HOP = 160  # frame hop of the P.835 front end, in samples
FRAMES = 900  # frames in one 9.01 s window
TRUNK_OUT = "mos_estimator_logpow/conv2d_3/Relu:0"
TRUNK_IN = "audio"
MID_OUT = "mos_estimator_logpow/conv2d_5/Relu:0"
QUARTERS = FRAMES // 4  # 225 mid frames in one window
EDGE = 4  # trunk frames at each window end that see the window's zero padding
EDGE_SAMPLES = (2 * EDGE + 1) * HOP  # 1440 samples: the 8 frames that give those 4 exactly
MID_EDGE = 3  # mid frames at each window end that see the window's padding (or its trunk EDGE)
MID_CHUNK = 24  # trunk frames (a multiple of 4) whose mid output gives those MID_EDGE frames exactly

_CONCAT = "mos_estimator_logpow/concat_concat"
_HALVES = ("mos_estimator_logpow/Reshape:0", "mos_estimator_logpow/Reshape_1:0")


def _check_front_end(graph, consts: dict[str, np.ndarray]) -> None:
    """Refuse a model whose framing is not the one described above (a different speechmos release)."""
    nodes = {n.name: n for n in graph.node}
    crop0, crop1 = nodes.get("input_1:01_cropping"), nodes.get("input_1:01_cropping_1")
    ok = crop0 is not None and crop1 is not None and _CONCAT in nodes
    if ok:
        start0, end0 = consts[crop0.input[1]], consts[crop0.input[2]]
        start1, end1 = consts[crop1.input[1]], consts[crop1.input[2]]
        ok = (
            start0.tolist() == [0, 0]
            and end0[1] == FRAMES * HOP
            and start1.tolist() == [0, HOP]
            and end1[1] >= (FRAMES + 1) * HOP
            and list(nodes[_CONCAT].input) == list(_HALVES)
        )
    convs = [n for n in graph.node if n.op_type == "Conv"]
    kernels = {n.name: consts[n.input[1]].shape for n in convs}
    ok = ok and kernels.get("stft-real") == (161, 320, 1) and kernels.get("stft-imag") == (161, 320, 1)
    ok = ok and [kernels.get(f"conv2d{s}") for s in ("", "_1", "_2", "_3")] == [
        (128, 1, 3, 3),
        (64, 128, 3, 3),
        (64, 64, 3, 3),
        (32, 64, 3, 3),
    ]
    for n in convs:  # the trunk's receptive field: 3x3, stride 1, zero padding 1
        attrs = {a.name: a for a in n.attribute}
        if n.name in ("conv2d", "conv2d_1", "conv2d_2", "conv2d_3"):
            ok = ok and list(attrs["strides"].ints) == [1, 1] and list(attrs["pads"].ints) == [1, 1, 1, 1]
    if not ok:
        raise ValueError("sig_bak_ovr.onnx is not the DNSMOS P.835 graph this split was written for")


def split_p835(path: str | Path) -> tuple[bytes, bytes, bytes]:
    """(trunk, mid, head) serialized ONNX models cut from the P.835 model at path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consts = {name: numpy_helper.to_array(i) for name, i in inits.items()}
    _check_front_end(graph, consts)

    nodes = list(graph.node)
    first = next(i for i, n in enumerate(nodes) if n.name == _CONCAT)
    cut1 = next(i for i, n in enumerate(nodes) if TRUNK_OUT in n.output)
    cut2 = next(i for i, n in enumerate(nodes) if MID_OUT in n.output)
    parts = nodes[first : cut1 + 1], nodes[cut1 + 1 : cut2 + 1], nodes[cut2 + 1 :]
    ops = [n.op_type for n in parts[1]]
    if ops != ["MaxPool", "Conv", "Relu", "MaxPool", "Conv", "Relu"]:
        raise ValueError(f"sig_bak_ovr.onnx: unexpected layers after the trunk: {ops}")
    # The graph is in topological order: each part may read only the previous part's cut tensor.
    made: set[str] = set()
    for part, cut_in in zip(parts, (None, TRUNK_OUT, MID_OUT), strict=True):
        if any(i in made - {cut_in} for n in part for i in n.input):
            raise ValueError("sig_bak_ovr.onnx: a layer reads past the cut")
        made |= {o for n in part for o in n.output}

    def used(ns: list) -> list:
        names = {i for n in ns for i in n.input}
        return [init for name, init in inits.items() if name in names]

    def const(name: str, values: list[int]):
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    def tensor(name: str, shape: list) -> object:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    # Framing for any length: audio [N, 160 (T + 1)] -> blocks [N, T + 1, 160] -> blocks[:, :-1] and
    # blocks[:, 1:], the two halves of frame t = audio[160 t : 160 t + 320] that the concat joins.
    front_consts = [
        const("split/blocks_shape", [0, -1, HOP]),
        const("split/zero", [0]),
        const("split/one", [1]),
        const("split/minus_one", [-1]),
        const("split/end", [np.iinfo(np.int64).max]),
    ]
    front = [
        helper.make_node("Reshape", [TRUNK_IN, "split/blocks_shape"], ["split/blocks"]),
        helper.make_node("Slice", ["split/blocks", "split/zero", "split/minus_one", "split/one"], [_HALVES[0]]),
        helper.make_node("Slice", ["split/blocks", "split/one", "split/end", "split/one"], [_HALVES[1]]),
    ]
    graphs = [
        helper.make_graph(
            front + parts[0],
            "dnsmos_p835_trunk",
            [tensor(TRUNK_IN, ["N", "S"])],
            [tensor(TRUNK_OUT, ["N", 32, "T", 161])],
            front_consts + used(parts[0]),
        ),
        helper.make_graph(
            parts[1],
            "dnsmos_p835_mid",
            [tensor(TRUNK_OUT, ["N", 32, "T", 161])],
            [tensor(MID_OUT, ["N", 32, "Q", 40])],
            used(parts[1]),
        ),
        helper.make_graph(
            parts[2], "dnsmos_p835_head", [tensor(MID_OUT, ["N", 32, QUARTERS, 40])], list(graph.output), used(parts[2])
        ),
    ]
    out = []
    for g in graphs:
        m = helper.make_model(g, opset_imports=model.opset_import, ir_version=model.ir_version)
        onnx.checker.check_model(m, full_check=True)
        out.append(m.SerializeToString())
    return out[0], out[1], out[2]
