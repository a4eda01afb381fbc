"""A tiny Piper-compatible voice for tests and benchmarks on machines without a real voice.

It is a real ONNX model with Piper's inputs (`input`, `input_lengths`, `scales`) and
output ([1, 1, T] float audio), so `PiperVoice.load()` and `synthesize()` run the real
espeak-ng phonemiser and onnxruntime path. What it says is a tone whose length follows
the phoneme count (`samples_per_phoneme` per id) — it is NOT speech. Needs the `onnx`
package (a development dependency).
"""

from __future__ import annotations

import json
from pathlib import Path


def build_tiny_voice(folder: Path, *, rate_hz: int = 16000, samples_per_phoneme: int = 400,
                     name: str = "tiny-test-tone", pitch_hz: float = 220.0) -> Path:
    """Write `<name>.onnx` + `.onnx.json` into folder; returns the .onnx path."""
    # lazy: onnx (a test and bench tool, not a runtime dependency) only when a voice is built
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

    folder.mkdir(parents=True, exist_ok=True)
    step = 2 * np.pi * pitch_hz / rate_hz
    nodes = [
        # ids [1, N] -> float, shape [1, 1, N, 1], tiled to [1, 1, N, S], flattened to [1, 1, N*S]
        helper.make_node("Cast", ["input"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["ids_f", "axes_13"], ["ids_4d"]),
        helper.make_node("Tile", ["ids_4d", "repeats"], ["tiled"]),
        helper.make_node("Reshape", ["tiled", "flat_shape"], ["flat"]),
        # A tone: sin(step * running index); the ids only set the length.
        helper.make_node("Shape", ["flat"], ["flat_shape_dyn"]),
        helper.make_node("ConstantOfShape", ["flat_shape_dyn"], ["ones"],
                         value=numpy_helper.from_array(np.array([1.0], dtype=np.float32))),
        helper.make_node("CumSum", ["ones", "axis_2"], ["index"]),
        helper.make_node("Mul", ["index", "step"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "gain"], ["output"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([1, 3], dtype=np.int64), "axes_13"),
        numpy_helper.from_array(np.array([1, 1, 1, samples_per_phoneme], dtype=np.int64), "repeats"),
        numpy_helper.from_array(np.array([1, 1, -1], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(np.array(2, dtype=np.int64), "axis_2"),
        numpy_helper.from_array(np.array([step], dtype=np.float32), "step"),
        numpy_helper.from_array(np.array([0.5], dtype=np.float32), "gain"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_tone_voice",
        [helper.make_tensor_value_info("input", TensorProto.INT64, [1, "n"]),
         helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "t"])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    config = {
        "audio": {"sample_rate": rate_hz}, "espeak": {"voice": "id"}, "num_speakers": 1,
        "num_symbols": max(i for ids in DEFAULT_PHONEME_ID_MAP.values() for i in ids) + 1,
        "phoneme_type": "espeak", "phoneme_id_map": DEFAULT_PHONEME_ID_MAP,
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        "piper_version": "tiny-test",
    }
    Path(f"{path}.json").write_text(json.dumps(config, ensure_ascii=False))
    return path
