"""Validation AUCs of weight averages of two trained face-swap networks (a "model soup"), validated as training
validates (the model's own validation split, 8 frames per video, no gates). Run from the repository root:

    python docs/training/2026-12-02-clean-baseline/soup.py models/deepfake-lite0-sbi runs/model-X2 --alphas 1 0 0.5

alpha weighs the first folder's tensors (1: the first network alone, 0: the second alone). Both folders must hold
the same architecture; integer tensors (BatchNorm step counters) are taken from the first.
"""
import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from deepfake.faces import load_face_detector  # noqa: E402
from deepfake.model import create_network, read_config  # noqa: E402
from deepfake.train import data  # noqa: E402
from deepfake.train.train import predict, validation_aucs  # noqa: E402

D = Path("../shared/data")
DIRS = [D / "images/ciplab/train", D / "images/dfdc_faces", D / "images/stylegan", D / "videos"]
HOLDOUT = [D / "images/ciplab/val", D / "videos_ffpp"]


def soup(a: dict, b: dict, alpha: float) -> dict:
    return {k: (alpha * a[k].float() + (1 - alpha) * b[k].float()).to(a[k].dtype) if a[k].is_floating_point() else a[k]
            for k in a}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    ap.add_argument("--alphas", type=float, nargs="+", default=[1.0, 0.0, 0.5])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = read_config(args.first)
    split = argparse.Namespace(dirs=DIRS, holdout=HOLDOUT, seed=None, heldout_fraction=None, cache=data.DEFAULT_CACHE)
    ds, info = data.validation_dataset(split, cfg, load_face_detector(data.face_detector_spec(None)))
    print(json.dumps(info))
    a, b = (load_file(str(f / "model.safetensors")) for f in (args.first, args.second))
    for alpha in args.alphas:
        net = create_network(cfg)
        net.load_state_dict(soup(a, b, alpha), strict=True)
        v = validation_aucs(ds, predict(net, ds.crops, cfg.data_config["mean"], cfg.data_config["std"]), ["videos_ffpp"])
        print(f"alpha {alpha:g}: cross-source {v['cross_source_mean']:.4f}  in-source mean {v['in_source_mean']:.4f}  "
              + " ".join(f"{k} {x:.3f}" for k, x in v["all"].items()))


if __name__ == "__main__":
    main()
