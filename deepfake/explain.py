"""Explanations as arrays: CAMs through the grad-cam package, and the batched grid occlusion map.
Nothing here knows about colours or files (render.py draws them)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Callable

import cv2
import numpy as np
import torch


class _CamClasses(Mapping):
    """name -> grad-cam class. The package (which pulls in scikit-learn, ~1 s) is imported on the first
    lookup of a class, not at startup: names and membership need no import."""

    def __init__(self, names: dict[str, str]):
        self._names = names

    def __getitem__(self, key: str):
        import pytorch_grad_cam as pgc

        return getattr(pgc, self._names[key])

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


# Methods of the grad-cam package offered by name. Gradient-free ones that need one forward pass per
# channel (ScoreCAM, AblationCAM) are left out: minutes per image on a 2-core CPU.
CAM_METHODS = _CamClasses({
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "hirescam": "HiResCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
})
OCCLUSION_BASELINES = ("mean", "blur", "black")
GRID_MIN, GRID_MAX = 2, 32


class FakeLogOdds:
    """CAM target: log-odds of the fake class, explained whatever class the model predicts.
    (A raw logit ignores the other classes; softmax probability saturates and kills gradients.)"""

    def __init__(self, fake_index: int):
        self.fake_index = fake_index

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if output.ndim == 1:
            output = output.unsqueeze(0)
        others = torch.cat([output[:, :self.fake_index], output[:, self.fake_index + 1:]], dim=1)
        return (output[:, self.fake_index] - torch.logsumexp(others, dim=1)).squeeze(0)


def get_module(net: torch.nn.Module, name: str) -> torch.nn.Module:
    try:
        return net.get_submodule(name)
    except AttributeError:
        raise ValueError(f"CAM layer '{name}' does not exist in the network") from None


def cam_maps(net: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, fake_index: int,
             method: str = "gradcam", flip: bool = False) -> np.ndarray:
    """(N, H, W) maps in [0, 1] for the fake output of each input. Hooks are released on return.
    flip=True (a model with test-time flip): the mean of the input's map and its mirror image's map
    mirrored back, as the probability being explained is the mean over both views."""
    try:
        cls = CAM_METHODS[method.lower()]
    except KeyError:
        raise ValueError(f"Unknown CAM method '{method}'. Choose one of: {', '.join(CAM_METHODS)}") from None
    # grad-cam needs autograd: leave any surrounding inference_mode / no_grad.
    with torch.inference_mode(False), torch.enable_grad():
        n = x.shape[0]
        x = x.detach().clone()
        # Both views in one batch, not grad-cam's aug_smooth: in grad-cam 1.5.7 the CAM classes do not pass
        # tta_transforms on (the default adds 0.9/1.1 brightness views: other maps), and with the flip alone
        # set by hand it gives the same maps 1.9x slower (one pass per view; measured on lite0, 2 crops).
        if flip:
            x = torch.cat([x, x.flip(-1)])
        # CAMs need gradients at the layer only: the graph starts at its output and no weight gets a
        # gradient, so the backward pass covers the few layers after it instead of the whole network
        # (same maps, several times faster on lite0: bench/run.py section 3).
        frozen = [(p, p.requires_grad) for p in net.parameters()]
        for p, _ in frozen:
            p.requires_grad_(False)
        handle = layer.register_forward_hook(_start_graph)  # before the CAM's hooks, which then see the graph
        try:
            with cls(model=net, target_layers=[layer]) as cam:
                maps = cam(input_tensor=x, targets=[FakeLogOdds(fake_index)] * x.shape[0])
        finally:
            handle.remove()
            for p, flag in frozen:
                p.requires_grad_(flag)
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32))
    return (maps[:n] + maps[n:, :, ::-1]) / 2 if flip else maps


def _start_graph(module, inputs, output):
    """Forward hook: the layer's output becomes the start of the autograd graph."""
    if isinstance(output, torch.Tensor) and not output.requires_grad:
        return output.detach().requires_grad_().clone()
    return None


def map_on_box(m: np.ndarray, crop_box) -> np.ndarray:
    """A crop's map resized onto its crop box (x0, y0, x1, y1): the image pixels it covers."""
    x0, y0, x1, y1 = crop_box
    return cv2.resize(m, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)


def paste_maps(maps: list[np.ndarray], crop_boxes, shape) -> np.ndarray:
    """Each crop's map resized onto its crop box in an (H, W) canvas; overlaps keep the max."""
    canvas = np.zeros(shape[:2], dtype=np.float32)
    for m, (x0, y0, x1, y1) in zip(maps, crop_boxes):
        np.maximum(canvas[y0:y1, x0:x1], map_on_box(m, (x0, y0, x1, y1)), out=canvas[y0:y1, x0:x1])
    return canvas


def peak_xy(m: np.ndarray, crop_box) -> tuple[int, int]:
    """Image (x, y) of the maximum of one crop's own map, as pasted. Not read from the merged map: where faces
    overlap, another face's map can be higher inside this face's crop box."""
    resized = map_on_box(m, crop_box)
    py, px = np.unravel_index(int(np.argmax(resized)), resized.shape)
    return int(crop_box[0] + px), int(crop_box[1] + py)


def baseline_image(x: torch.Tensor, baseline: str) -> torch.Tensor:
    """What an occluded cell is replaced with, for one preprocessed input (1, C, H, W)."""
    if baseline == "mean":  # the crop's mean colour (normalisation is per channel, so this is exact)
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    if baseline == "blur":
        k = (x.shape[-1] // 8) | 1
        return torch.from_numpy(cv2.GaussianBlur(x[0].permute(1, 2, 0).cpu().numpy(), (k, k), 0)).permute(
            2, 0, 1)[None].to(x.device, x.dtype)
    if baseline == "black":  # zero in normalised space, i.e. the dataset mean colour
        return torch.zeros_like(x)
    raise ValueError(f"Unknown occlusion baseline '{baseline}'. Choose one of: {', '.join(OCCLUSION_BASELINES)}")


def occlusion_changes(probabilities: Callable[[torch.Tensor], np.ndarray], x: torch.Tensor, grid: int,
                      baseline: str = "mean", batch_size: int = 16) -> tuple[float, np.ndarray]:
    """Grid occlusion: (fake probability of x, G x G array of p(x) - p(x with cell occluded)).

    The occluded copies are built batch_size at a time (16 keeps them in cache; 64 was 4x slower to build)
    and scored in batches, so a 16 x 16 grid costs 257 forward passes at full batch efficiency, not 257
    Python-loop passes.
    """
    if not GRID_MIN <= int(grid) <= GRID_MAX:
        raise ValueError(f"Grid size must be between {GRID_MIN} and {GRID_MAX}, got {grid}.")
    grid = int(grid)
    base = baseline_image(x, baseline)
    rows, cols = _cell_spans(x.shape[2], grid), _cell_spans(x.shape[3], grid)
    n = grid * grid
    p0 = float(probabilities(x)[0])
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, batch_size):
        cells = range(start, min(start + batch_size, n))
        # Copies of x with one cell each replaced by the baseline: a batch copy plus one slice write per cell
        # (a third of the cost of a masked select over the batch; bench/alternatives.py checks the pixels agree).
        occluded = torch.empty((len(cells), *x.shape[1:]), dtype=x.dtype, device=x.device,
                               memory_format=torch.channels_last).copy_(x.expand(len(cells), -1, -1, -1))
        for j, cell in enumerate(cells):
            (r0, r1), (c0, c1) = rows[cell // grid], cols[cell % grid]
            occluded[j, :, r0:r1, c0:c1] = base[0, :, r0:r1, c0:c1]
        out[start:start + len(cells)] = probabilities(occluded)
    return p0, (p0 - out).reshape(grid, grid)


def _cell_spans(length: int, grid: int) -> list[tuple[int, int]]:
    """[start, end) of each of the grid cells along an axis: pixel i belongs to cell floor(i * grid / length)."""
    owner = np.arange(length) * grid // length
    return [(int(np.searchsorted(owner, g, "left")), int(np.searchsorted(owner, g, "right"))) for g in range(grid)]
