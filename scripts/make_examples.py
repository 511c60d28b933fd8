"""Regenerate examples/: licence-clean inputs made by this project.

  examples/astronaut.png           scikit-image's public-domain astronaut photo (NASA, Eileen Collins)
  examples/astronaut_sbi_fake.png  a self-blended fake of it (deepfake.train.sbi.self_blend)
  examples/astronaut_sbi.mp4       4 s, 256x256, 12 fps, H.264: slow pan/zoom over the photo; frames in the
                                   middle third are self-blended, so the timeline and frame importance
                                   have something to show

    python scripts/make_examples.py [--yunet face_detection_yunet_2023mar.onnx] [--out examples]

Deterministic for a given seed. Needs scikit-image (requirements-dev.txt); ffmpeg for H.264 (else the
video is written with OpenCV's mp4v, which the app still analyses and previews).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deepfake.faces import load_face_detector  # noqa: E402
from deepfake.train.sbi import self_blend  # noqa: E402

SIZE = 256
FPS = 12
SECONDS = 4
FAKE_SPAN = (1 / 3, 2 / 3)  # fraction of the clip whose frames are manipulated


def face_geometry(det, rgb: np.ndarray):
    faces = det.detect(rgb)
    if not faces:
        raise SystemExit("no face found in the astronaut photo: cannot make the examples")
    f = faces[0]
    return (np.asarray(f.landmarks, np.float32) if f.landmarks is not None else None), np.asarray(f.box, np.float32)


def views(n: int, shape) -> list[tuple[float, float, float]]:
    """(x0, y0, side) of a square window per frame: a slow zoom in with a small drift toward the face."""
    H, W = shape[:2]
    out = []
    for i in range(n):
        t = i / max(1, n - 1)
        side = (0.78 - 0.18 * t) * min(H, W)
        cx = W * (0.40 + 0.03 * np.sin(2 * np.pi * t))
        cy = H * (0.36 + 0.02 * t)
        x0 = float(np.clip(cx - side / 2, 0, W - side))
        y0 = float(np.clip(cy - side / 2, 0, H - side))
        out.append((x0, y0, side))
    return out


def warp(rgb, view):
    x0, y0, side = view
    s = SIZE / side
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float32)
    return cv2.warpAffine(rgb, m, (SIZE, SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT), s


def write_video(frames: list[np.ndarray], path: Path) -> str:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        cmd = [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{SIZE}x{SIZE}", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "slow",
               "-crf", "16", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)]
        subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True)
        return "h264"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (SIZE, SIZE))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return "mp4v"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "examples")
    ap.add_argument("--yunet", default=None, help="YuNet ONNX file (default: the Hub cache, else Haar)")
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args(argv)
    from skimage import data

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    rgb = np.ascontiguousarray(data.astronaut())
    det = load_face_detector(args.yunet)
    lm, box = face_geometry(det, rgb)
    rng = np.random.default_rng(args.seed)
    fake, _ = self_blend(rgb, lm if lm is not None else box, rng)
    cv2.imwrite(str(out / "astronaut.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    cv2.imwrite(str(out / "astronaut_sbi_fake.png"), cv2.cvtColor(fake, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])

    n = FPS * SECONDS
    lo, hi = int(n * FAKE_SPAN[0]), int(n * FAKE_SPAN[1])
    frames = []
    for i, view in enumerate(views(n, rgb.shape)):
        frame, s = warp(rgb, view)
        if lo <= i < hi:
            x0, y0, _ = view
            geom = ((lm - [x0, y0]) * s) if lm is not None else np.array(
                [(box[0] - x0) * s, (box[1] - y0) * s, box[2] * s, box[3] * s], np.float32)
            frame, _ = self_blend(frame, geom, np.random.default_rng(args.seed * 1000 + i))
        frames.append(frame)
    codec = write_video(frames, out / "astronaut_sbi.mp4")
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"wrote {out}: astronaut.png, astronaut_sbi_fake.png, astronaut_sbi.mp4 ({n} frames, {codec}, "
          f"frames {lo}-{hi - 1} self-blended); {total / 1e6:.2f} MB in total")


if __name__ == "__main__":
    main()
