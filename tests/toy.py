"""A tiny hand-built 'deepfake detector' whose fake score depends only on high-frequency texture,
optionally only inside one known region: explanations must point there."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepfake.detector import Detector
from deepfake.crop import CropRecipe
from deepfake.faces import Face, FaceDetector, haar_detector
from deepfake.model import DetectorConfig, Network
from deepfake.quality import QualityGates

SIZE = 64


class RegionGate(nn.Module):
    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask[None, None].float())

    def forward(self, x):
        return x * self.mask


class TextureNet(nn.Module):
    """logit_fake = gain * (mean |Laplacian| inside the region) - bias; logit_real = 0."""

    def __init__(self, region=None, size=SIZE, gain=4.0, bias=4.0):
        super().__init__()
        lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        self.lap = nn.Conv2d(3, 3, 3, padding=1, bias=False, groups=3)
        self.lap.weight.data[:] = lap
        self.lap.weight.requires_grad_(False)
        mask = torch.zeros(size, size)
        if region is None:
            mask[:] = 1
        else:
            y0, y1, x0, x1 = region
            mask[y0:y1, x0:x1] = 1
        self.gate = RegionGate(mask)
        self.mix = nn.Conv2d(3, 1, 1, bias=False)  # the CAM layer: zero outside the region
        self.mix.weight.data[:] = 1.0 / 3.0
        self.area = float(mask.sum())
        self.gain, self.bias = gain, bias

    def forward(self, x):
        energy = self.mix(self.gate(self.lap(x).abs()))
        fake = self.gain * energy.sum(dim=(1, 2, 3)) / self.area - self.bias
        return torch.stack([torch.zeros_like(fake), fake], dim=1)


# Fixed gates, so that toy tests do not follow the bundled network's measured DEFAULT_GATES (its 60-sharpness
# gate fails the smooth 64 px toy crops); tests of the gates set their own.
TOY_GATES = QualityGates(min_side_px=24.0, min_sharpness=30.0, min_brightness=10.0, max_yaw=0.6)


def toy_network(region=None, size=SIZE, flip: bool = False, margin: float = 1.3) -> Network:
    cfg = DetectorConfig(architecture="toy", num_classes=2, pretrained_cfg={}, label_names=("real", "fake"),
                         fake_index=1, threshold=0.5, crop=CropRecipe(margin, size), cam_layer="mix",
                         test_time_flip=flip, gates=TOY_GATES)
    data_config = {"input_size": (3, size, size), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                   "crop_pct": 1.0, "interpolation": "bilinear"}
    return Network(cfg, TextureNet(region, size).eval(), torch.device("cpu"), data_config)


def toy_detector(region=None, size=SIZE) -> Detector:
    return Detector(toy_network(region, size), haar_detector(), "toy", "test")


def textured(size=SIZE, region=None, seed=0) -> np.ndarray:
    """A smooth grey gradient with strong noise texture inside `region` (y0, y1, x0, x1)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(90, 160, size, dtype=np.float32)
    img = np.repeat(np.repeat(ramp[None, :, None], size, 0), 3, 2)
    if region is not None:
        y0, y1, x0, x1 = region
        img[y0:y1, x0:x1] += rng.normal(0, 40, (y1 - y0, x1 - x0, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


class FixedFaces(FaceDetector):
    """A face detector that finds the given boxes in every image (overlapping faces on demand)."""

    def __init__(self, boxes):
        super().__init__("fixed", "test")
        self.boxes = list(boxes)

    def detect(self, rgb):
        return [Face(tuple(b), 1.0) for b in self.boxes]
