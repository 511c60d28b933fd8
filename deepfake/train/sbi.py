"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): a fake made from one real face by blending a
colour-, scale- and sharpness-jittered copy of the face back into itself through a blurred, randomly
deformed face mask. The detector learns blending boundaries and statistical mismatches that every
face swap leaves, without seeing any face-swap method. Vectorised NumPy/OpenCV only."""
from __future__ import annotations

import cv2
import numpy as np


def _face_geometry(landmarks_or_box) -> tuple[np.ndarray, np.ndarray | None]:
    """(box x, y, w, h as float array, landmarks (5, 2) or None)."""
    a = np.asarray(landmarks_or_box, dtype=np.float64)
    if a.shape == (5, 2) and np.isfinite(a).all():
        lo, hi = a.min(0), a.max(0)
        # the landmark spread covers eyes to mouth; a face box is about twice that wide and tall
        span = max(hi[0] - lo[0], hi[1] - lo[1], 1.0)
        c = (lo + hi) / 2.0
        side = 2.0 * span
        return np.array([c[0] - side / 2, c[1] - side / 2 + 0.05 * side, side, side]), a
    if a.size == 4 and np.isfinite(a).all():
        return a.reshape(4), None
    raise ValueError("landmarks_or_box must be a (5, 2) array of landmarks or an (x, y, w, h) box")


def _hull_points(lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Face outline from the 5 YuNet landmarks: eyes, nose and mouth corners pushed outwards to the
    forehead, cheeks and chin by random amounts."""
    eyes, nose, mouth = lm[:2], lm[2], lm[3:]
    eye_c, mouth_c = eyes.mean(0), mouth.mean(0)
    down = mouth_c - eye_c
    h = np.linalg.norm(down) + 1e-6
    down /= h
    right = np.array([-down[1], down[0]])
    if np.dot(eyes[1] - eyes[0], right) < 0:
        right = -right
    w = max(np.linalg.norm(eyes[1] - eyes[0]), 0.5 * h)
    up_amt = rng.uniform(0.6, 1.0) * h
    chin = rng.uniform(0.7, 1.1) * h
    side = rng.uniform(0.35, 0.7) * w
    pts = [eyes[0] - up_amt * down - side * 0.5 * right, eyes[1] - up_amt * down + side * 0.5 * right,
           eyes[0] - side * right, eyes[1] + side * right,
           mouth[0] - side * 0.8 * right, mouth[1] + side * 0.8 * right,
           mouth_c + chin * down, nose]
    return np.array(pts, np.float32)


def face_mask(shape, landmarks_or_box, rng: np.random.Generator) -> np.ndarray:
    """Random blend mask float32 [0, 1] of an image of `shape`: landmark hull (or box ellipse), randomly
    scaled and elastically deformed, eroded or dilated, then blurred."""
    H, W = shape[:2]
    box, lm = _face_geometry(landmarks_or_box)
    x, y, w, h = box
    side = max(w, h, 4.0)
    hard = np.zeros((H, W), np.uint8)
    if lm is not None and rng.random() < 0.8:
        pts = _hull_points(lm, rng)
        c = pts.mean(0)
        pts = c + (pts - c) * rng.uniform(0.85, 1.1)
        cv2.fillConvexPoly(hard, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    else:
        c = (x + w / 2, y + h / 2 + rng.uniform(-0.05, 0.05) * h)
        axes = (max(1, int(w / 2 * rng.uniform(0.65, 0.95))), max(1, int(h / 2 * rng.uniform(0.75, 1.05))))
        cv2.ellipse(hard, (int(round(c[0])), int(round(c[1]))), axes, float(rng.uniform(-10, 10)), 0, 360, 1, -1)
    mask = hard.astype(np.float32)
    # elastic deformation: a smooth random displacement field, amplitude a few % of the face
    g = 4
    amp = rng.uniform(0.02, 0.08) * side
    dx = cv2.resize(rng.uniform(-1, 1, (g, g)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC) * amp
    dy = cv2.resize(rng.uniform(-1, 1, (g, g)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC) * amp
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    mask = cv2.remap(mask, (gx + dx).astype(np.float32), (gy + dy).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # erode or dilate a little, then blur the boundary (random width)
    k = int(max(1, rng.uniform(0.0, 0.06) * side))
    if k > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    sigma = max(0.5, rng.uniform(0.02, 0.12) * side)
    blurred = cv2.GaussianBlur(mask, (0, 0), sigma)
    blurred = np.where(blurred < 1e-3, 0.0, blurred)  # exact zeros far from the face
    if blurred.max() <= 0:  # degenerate mask (face off-image): an ellipse at the image centre
        return face_mask(shape, (W * 0.25, H * 0.2, W * 0.5, H * 0.6), rng)
    blurred = blurred / blurred.max()
    return np.clip(blurred, 0.0, 1.0).astype(np.float32)


def _jitter_source(rgb: np.ndarray, face_center, side: float, rng: np.random.Generator) -> np.ndarray:
    """The copy to blend in: colour (per-channel gain/shift, HSV), sharpness, scale and a small shift."""
    H, W = rgb.shape[:2]
    src = rgb.astype(np.float32)
    if rng.random() < 0.9:  # colour: per-channel gain and offset, brightness, contrast
        gain = rng.uniform(0.9, 1.1, 3).astype(np.float32)
        shift = rng.uniform(-12, 12, 3).astype(np.float32)
        src = src * gain + shift
        if rng.random() < 0.5:
            hsv = cv2.cvtColor(np.clip(src, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-5, 5)) % 180
            hsv[..., 1] *= rng.uniform(0.85, 1.15)
            src = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    r = rng.random()
    if r < 0.35:  # softer
        src = cv2.GaussianBlur(src, (0, 0), rng.uniform(0.5, 1.5) * max(side / 150.0, 0.4))
    elif r < 0.7:  # sharper (unsharp mask)
        blur = cv2.GaussianBlur(src, (0, 0), 1.0 + rng.random())
        src = src + rng.uniform(0.3, 1.0) * (src - blur)
    # scale about the face centre and shift by a few pixels
    s = rng.uniform(0.94, 1.06)
    tx, ty = rng.uniform(-0.03, 0.03, 2) * side
    cx, cy = face_center
    M = np.array([[s, 0, (1 - s) * cx + tx], [0, s, (1 - s) * cy + ty]], np.float32)
    src = cv2.warpAffine(src, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return src


def self_blend(rgb: np.ndarray, landmarks_or_box, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A self-blended fake of a real face image.

    rgb: HxWx3 uint8; landmarks_or_box: (5, 2) YuNet landmarks (right eye, left eye, nose, mouth corners)
    or an (x, y, w, h) face box, in pixels of rgb; rng: numpy Generator (deterministic for a seed).
    Returns (fake uint8 same size, blend mask float32 in [0, 1]); pixels where the mask is 0 are unchanged.
    """
    rgb = np.ascontiguousarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("rgb must be an HxWx3 uint8 array")
    box, _ = _face_geometry(landmarks_or_box)
    side = float(max(box[2], box[3], 4.0))
    center = (box[0] + box[2] / 2.0, box[1] + box[3] / 2.0)
    mask = face_mask(rgb.shape, landmarks_or_box, rng)
    mask = mask * float(rng.choice([0.5, 0.75, 1.0, 1.0, 1.0]))
    src = _jitter_source(rgb, center, side, rng)
    m = mask[..., None]
    out = src * m + rgb.astype(np.float32) * (1.0 - m)
    fake = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    fake[mask <= 0] = rgb[mask <= 0]
    return fake, mask.astype(np.float32)
