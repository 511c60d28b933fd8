"""Uniform weight averages ("soups") of lite2 runs, scored on the validation crops the training curve uses.

Run from the repo root with ../shared beside it (names are runs/model-NAME folders; "+" joins one soup's members):
    python docs/training/2026-12-01-lite2-12-epochs/soup.py L L+Q5 L+Q
"""
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo root
from deepfake.crop import CropRecipe  # noqa: E402
from deepfake.faces import load_face_detector  # noqa: E402
from deepfake.train import data, train as T  # noqa: E402
from deepfake.train.pretrained import create_pretrained  # noqa: E402

torch.set_num_threads(2)
S = "../shared/data/"
dirs = [Path(S + p) for p in ["images/ciplab/train", "images/dfdc_faces", "images/stylegan", "videos"]]
hold = [Path(S + p) for p in ["images/ciplab/val", "videos_ffpp"]]
splits = data.make_splits(dirs, hold, 0.25, 0, [Path(S + "images/ffpp_faces")])  # the bundled network's split
ds, _ = data.build_dataset(splits["val"], load_face_detector(data.face_detector_spec(None)), CropRecipe(1.3, 260),
                           data.DEFAULT_CACHE, 8, log=None)
net, _ = create_pretrained("tf_efficientnet_lite2", 2)
net.eval()
combos = [c.split("+") for c in sys.argv[1:]]
weights = {n: load_file(f"runs/model-{n}/model.safetensors") for n in {n for c in combos for n in c}}
for combo in combos:
    avg = {k: torch.stack([weights[c][k] for c in combo]).mean(0) if v.is_floating_point() else v.clone()
           for k, v in weights[combo[0]].items()}
    net.load_state_dict(avg)
    a = T.validation_aucs(ds, T.predict(net, ds.crops, (0.5,) * 3, (0.5,) * 3), {"videos_ffpp"})
    print("+".join(combo), f"cross {a['cross_source_mean']:.3f} in {a['in_source_mean']:.3f}",
          " ".join(f"{s} {v:.3f}" for s, v in a["all"].items()), flush=True)
