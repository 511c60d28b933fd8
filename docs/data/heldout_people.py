"""Which images/ffpp_faces crops (training only, no ids) show a person of the held-out videos_ffpp videos?

dlib's face-recognition network (128-d descriptors, from the dev requirements) on every ffpp_faces crop and on
6 frames of each videos_ffpp original; a crop's distance is the smallest to any frame of a held-out person. Writes
the distances (CSV) and the crops closer than THRESHOLD to a held-out person as a `train --exclude` list.
Run from the repo root with ../shared beside it (about 10 min on 2 cores):
    python docs/data/heldout_people.py
"""
from pathlib import Path

import cv2
import dlib
import importlib.util
import numpy as np

S = Path("../shared/data")
# the package's __init__ needs pkg_resources; its model files are all we use
M = Path(importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]) / "models"
det = dlib.get_frontal_face_detector()
sp = dlib.shape_predictor(str(M / "shape_predictor_5_face_landmarks.dat"))
rec = dlib.face_recognition_model_v1(str(M / "dlib_face_recognition_resnet_model_v1.dat"))


def descriptor(rgb, upsample=1):
    faces = det(rgb, upsample)
    rect = max(faces, key=lambda r: r.area()) if faces else dlib.rectangle(0, 0, rgb.shape[1] - 1, rgb.shape[0] - 1)
    return np.array(rec.compute_face_descriptor(rgb, sp(rgb, rect))), bool(faces)


# above every held-out person's frame-to-frame distance (max 0.352), below the closest two held-out people (0.553)
THRESHOLD = 0.5


def write_list(rows, path):
    """rows (file, label, nearest identity, distance, found) -> the exclusion list of crops below THRESHOLD."""
    hits = [r for r in rows if float(r[3]) < THRESHOLD]
    path.write_text(f"# ffpp_faces crops whose face is within {THRESHOLD} (dlib descriptor distance) of a person of the\n"
                    "# held-out videos_ffpp originals; written by docs/data/heldout_people.py. Use: train --exclude\n"
                    + "".join(f"images/ffpp_faces/{r[1]}/{r[0]}\n" for r in sorted(hits, key=lambda r: (r[1], r[0]))))


held = {}  # identity -> list of descriptors
for v in sorted((S / "videos_ffpp/real").iterdir()):
    ident = v.stem.split("_")[-1]
    cap = cv2.VideoCapture(str(v))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    for k in np.linspace(0, n - 1, 6).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(k))
        ok, bgr = cap.read()
        if ok:
            d, found = descriptor(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            if found:
                held.setdefault(ident, []).append(d)
print({k: len(v) for k, v in held.items()}, flush=True)
ids = sorted(held)
cent = {k: np.mean(held[k], 0) for k in ids}
within = [np.linalg.norm(a - cent[k]) for k in ids for a in held[k]]
between = [np.linalg.norm(cent[a] - cent[b]) for i, a in enumerate(ids) for b in ids[i + 1:]]
print(f"held-out frames to own identity: max {max(within):.3f}; between identities: min {min(between):.3f}", flush=True)
rows = []
for label in ("real", "fake"):
    for p in sorted((S / "images/ffpp_faces" / label).iterdir()):
        img = cv2.imread(str(p))
        if img is None:
            continue
        d, found = descriptor(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), 0)  # 299 px crops: faces are large
        dist = {k: min(np.linalg.norm(d - a) for a in held[k]) for k in ids}
        best = min(dist, key=dist.get)
        rows.append((p.name, label, best, dist[best], found))
HERE = Path(__file__).resolve().parent
out = HERE / "ffpp_faces-heldout-distances.csv"
out.write_text("file,label,nearest_heldout_identity,distance,dlib_found_face\n"
               + "".join(f"{a},{b},{c},{d:.4f},{int(e)}\n" for a, b, c, d, e in rows))
for t in (0.4, 0.5, 0.6):
    for label in ("real", "fake"):
        m = [r for r in rows if r[1] == label and r[3] < t]
        print(f"distance < {t}: {label} {len(m)} of {sum(r[1] == label for r in rows)}  "
              f"identities {sorted({r[2] for r in m})}", flush=True)
write_list(rows, HERE / "ffpp_faces-heldout-people.txt")
