"""What the project's methods are compared against, and the checks that they compute the same thing:
the per-cell occlusion loop (the seed's method), Captum's Occlusion, naive video decoding, and other
inference backends (torch.compile, ONNX Runtime fp32 and int8)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from deepfake import explain

Probabilities = Callable[[torch.Tensor], np.ndarray]


# ---------------------------------------------------------------------------------------- occlusion
def cell_ids(h: int, w: int, grid: int, device) -> torch.Tensor:
    """(H, W) map of the grid cell (row * grid + col) each pixel belongs to: an independent statement of the
    cells that explain.occlusion_changes builds from spans."""
    rows = torch.div(torch.arange(h, device=device) * grid, h, rounding_mode="floor")
    cols = torch.div(torch.arange(w, device=device) * grid, w, rounding_mode="floor")
    return rows[:, None] * grid + cols[None, :]


def loop_occlusion(probabilities: Probabilities, x: torch.Tensor, grid: int, baseline: str = "mean") -> np.ndarray:
    """The seed's method: one batch-1 forward per cell in a Python loop."""
    base = explain.baseline_image(x, baseline)
    ids = cell_ids(x.shape[2], x.shape[3], grid, x.device)
    p0 = float(probabilities(x)[0])
    out = np.empty(grid * grid)
    for cell in range(grid * grid):
        occluded = torch.where((ids == cell)[None, None], base, x)
        out[cell] = p0 - float(probabilities(occluded.contiguous(memory_format=torch.channels_last))[0])
    return out.reshape(grid, grid)


def captum_occlusion(probabilities: Probabilities, x: torch.Tensor, grid: int, baseline: str = "mean") -> np.ndarray:
    """Captum's Occlusion with its default settings (one perturbation per forward), windows = grid cells.
    Needs a grid that divides the input size (cells of equal size)."""
    from captum.attr import Occlusion

    h, w = x.shape[2:]
    if h % grid or w % grid:
        raise ValueError(f"grid {grid} does not divide the input size {h}x{w}")
    kh, kw = h // grid, w // grid
    occ = Occlusion(lambda t: torch.from_numpy(probabilities(t.contiguous(memory_format=torch.channels_last))))
    attr = occ.attribute(x, sliding_window_shapes=(x.shape[1], kh, kw), strides=(x.shape[1], kh, kw),
                         baselines=explain.baseline_image(x, baseline).contiguous())
    return attr[0, 0, kh // 2::kh, kw // 2::kw].double().numpy()


def occlusion_three_ways(probabilities: Probabilities, x: torch.Tensor, grid: int, baseline: str = "mean"):
    """(max abs difference between the three maps, {name: map})."""
    maps = {"ours": explain.occlusion_changes(probabilities, x, grid, baseline)[1],
            "loop": loop_occlusion(probabilities, x, grid, baseline),
            "captum": captum_occlusion(probabilities, x, grid, baseline)}
    diff = max(float(np.abs(maps["ours"] - maps[k]).max()) for k in ("loop", "captum"))
    return diff, maps


# ---------------------------------------------------------------------------------------- video
def decode_every_frame(path, wanted: list[int]) -> list[np.ndarray]:
    """The naive way: decode and convert every frame of the clip, keep the wanted ones."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    targets, out, i = set(wanted), [], 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if i in targets:
                out.append(rgb)
            i += 1
    finally:
        cap.release()
    return out


def seek_every_sample(path, wanted: list[int]) -> list[np.ndarray]:
    """One OpenCV seek (CAP_PROP_POS_FRAMES) per wanted frame, whatever the spacing."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    out = []
    try:
        for idx in wanted:
            cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
            ok, bgr = cap.read()
            if ok:
                out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return out


# ---------------------------------------------------------------------------------------- backends
def export_onnx(net: torch.nn.Module, path: Path, size: int) -> Path:
    from deepfake.model import export_onnx as export  # the exporter the ONNX Runtime backend uses

    return export(net, path, size)


def quantize_int8(src: Path, dst: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8)
    return dst


def ort_probabilities(path: Path, fake_index: int, threads: int | None = None) -> Probabilities:
    """probabilities(x) through an ONNX Runtime session of the exported file."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the Network backend
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def probabilities(x: torch.Tensor) -> np.ndarray:
        logits = sess.run(None, {"input": np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)})[0]
        return torch.softmax(torch.from_numpy(logits).float(), 1)[:, fake_index].double().numpy()

    return probabilities


def eager_probabilities(net: torch.nn.Module, fake_index: int) -> Probabilities:
    """Plain PyTorch: channels_last input, inference_mode."""
    def probabilities(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            logits = net(x.contiguous(memory_format=torch.channels_last))
            return torch.softmax(logits.float(), 1)[:, fake_index].double().numpy()

    return probabilities


def compiled_probabilities(net: torch.nn.Module, fake_index: int) -> Probabilities:
    compiled = torch.compile(net, dynamic=False)

    def probabilities(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return torch.softmax(compiled(x).float(), 1)[:, fake_index].double().numpy()

    return probabilities
