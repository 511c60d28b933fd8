"""Detectors made for tests and benchmarks: random weights on disk, and one that waits at a gate."""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

GATE_TIMEOUT = 300.0  # a gate left shut (a failed run) opens by itself; no passing run waits for it


def write_random_detector(folder: Path, seed: int = 0, threshold: float = 0.5) -> Path:
    """A real tf_efficientnet_lite0 detector folder with random weights (tests of the loading path)."""
    import timm
    import torch
    from safetensors.torch import save_file

    from deepfake.model import CropRecipe, make_config_dict

    torch.manual_seed(seed)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=2)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = make_config_dict("tf_efficientnet_lite0", dict(net.pretrained_cfg, crop_pct=1.0),
                           threshold=threshold, crop=CropRecipe(1.3, 224), data="random weights for tests")
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "README.md").write_text("---\nlibrary_name: timm\n---\n# Random test detector\n")
    return folder


class GatedDetector:
    """A detector whose occlusion_map waits until `gate` is set: a /grid_heatmap request then holds the heavy
    worker for exactly as long as the caller wants. `entered` is set once a request is inside."""

    def __init__(self, detector):
        self._detector = detector
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name):
        return getattr(self._detector, name)

    def occlusion_map(self, *args, **kwargs):
        self.entered.set()
        self.gate.wait(GATE_TIMEOUT)
        return self._detector.occlusion_map(*args, **kwargs)


def write_two_network_detector(folder: Path, band=None, temperature: float = 0.7, ref: dict | None = None) -> Path:
    """A copy of the bundled detector with a second network, 'generated': the bundled weights at `temperature`
    (so its probability of a crop is known) with `band` (a deepfake.band.Band; None: the bundled band), in
    networks/generated. ref: the config's networks entry instead (e.g. one naming a Hub repo; then no folder)."""
    write_face_swap_only(folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["deepfake"]["networks"] = [ref or {"name": "generated", "kind": "generated", "path": "networks/generated"}]
    (folder / "config.json").write_text(json.dumps(cfg))
    if ref is None:
        write_generated_network(folder / "networks" / "generated", band, temperature)
    return folder


def write_generated_network(folder: Path, band=None, temperature: float = 0.7) -> Path:
    """The bundled network as a detector folder of kind 'generated' at `temperature`, with `band`."""
    from .paths import BUNDLED

    folder.mkdir(parents=True)
    for name in ("model.safetensors", "README.md"):
        shutil.copy(BUNDLED / name, folder / name)
    cfg = json.loads((BUNDLED / "config.json").read_text())
    own = cfg["deepfake"]
    own.pop("networks", None)
    own.update(temperature=temperature, kind="generated", name="generated")
    if band is not None:
        own["band"], own["threshold"] = band.to_dict(), band.fake_from
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def write_face_swap_only(folder: Path) -> Path:
    """A copy of the bundled detector with its first network only (no deepfake.networks): the one-network case."""
    from .paths import BUNDLED

    shutil.copytree(BUNDLED, folder, ignore=shutil.ignore_patterns("networks"))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["deepfake"].pop("networks", None)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder
