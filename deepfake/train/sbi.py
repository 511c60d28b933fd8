"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): fakes made from one real face.

A fake is made from one real face by blending a colour-, scale- and sharpness-jittered copy of the face back
into itself through a blurred, randomly deformed face mask. The detector learns blending boundaries and
statistical mismatches that every face swap leaves, without seeing any face-swap method. Vectorised NumPy/OpenCV
only.

With 68 dense landmarks (training crops carry them, see landmarks.py) the paper's recipe is followed: the
mask is the convex hull of the landmarks (or of one of its parts), deformed by an anisotropic resize, a
smooth elastic field and two blurs with a hard cut between them; either the source or the target copy is
jittered (RGB shift, hue/saturation/value, brightness/contrast, then a downscale or a sharpen), the source is
shifted and scaled a little, and the blend ratio is drawn from {0.25, 0.5, 0.75, 1, 1, 1}. With 5 YuNet
landmarks or a box, a hull is extrapolated from them (the recipe of the first bundled models)."""
from __future__ import annotations

import cv2
import numpy as np


def _face_geometry(landmarks_or_box) -> tuple[np.ndarray, np.ndarray | None]:
    """(box x, y, w, h as float array, landmarks (5, 2) or (68, 2), or None)."""
    a = np.asarray(landmarks_or_box, dtype=np.float64)
    if a.shape == (68, 2) and np.isfinite(a).all():
        lo, hi = a.min(0), a.max(0)
        return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]), a
    if a.shape == (5, 2) and np.isfinite(a).all():
        lo, hi = a.min(0), a.max(0)
        # the landmark spread covers eyes to mouth; a face box is about twice that wide and tall
        span = max(hi[0] - lo[0], hi[1] - lo[1], 1.0)
        c = (lo + hi) / 2.0
        side = 2.0 * span
        return np.array([c[0] - side / 2, c[1] - side / 2 + 0.05 * side, side, side]), a
    if a.size == 4 and np.isfinite(a).all():
        return a.reshape(4), None
    raise ValueError("landmarks_or_box must be a (5, 2) or (68, 2) array of landmarks or an (x, y, w, h) box")


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


# 68-point (iBUG) index ranges: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67
_HULL_PARTS = (np.arange(68), np.r_[0:17, 17:27], np.r_[17:68], np.r_[0:17, 27:36, 48:68])


def hull68_mask(shape, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's blend mask from 68 landmarks: convex hull of all points, of the outline, of the inner face
    or of the lower face (chosen at random), then deformed and blurred; float32 in [0, 1]."""
    H, W = shape[:2]
    pts = lm[_HULL_PARTS[int(rng.integers(len(_HULL_PARTS)))]]
    hard = np.zeros((H, W), np.float32)
    cv2.fillConvexPoly(hard, cv2.convexHull(np.round(pts).astype(np.int32)), 1.0)
    side = float(max(np.ptp(lm[:, 0]), np.ptp(lm[:, 1]), 8.0))
    # anisotropic resize (192-256 of 256 per axis, as the paper) about the hull's centre: shape deformation
    ys, xs = np.nonzero(hard)
    if len(xs) == 0:
        return face_mask(shape, (W * 0.25, H * 0.2, W * 0.5, H * 0.6), rng)
    cx, cy = xs.mean(), ys.mean()
    sx, sy = rng.integers(192, 257, 2) / 256.0
    M = np.array([[sx, 0, (1 - sx) * cx], [0, sy, (1 - sy) * cy]], np.float32)
    mask = cv2.warpAffine(hard, M, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
    mask = _elastic(mask, rng.uniform(0.01, 0.05) * side, rng)
    # blur, cut where the blur fell below 1 (an erosion of random width), blur again: the boundary's softness
    k1 = max(1.0, rng.uniform(0.005, 0.03) * side)
    m = cv2.GaussianBlur(mask, (0, 0), k1)
    m = np.where(m >= m.max() * 0.999, 1.0, 0.0).astype(np.float32) if m.max() > 0 else m
    k2 = max(1.0, rng.uniform(0.01, 0.08) * side)
    m = cv2.GaussianBlur(m, (0, 0), k2)
    m = np.where(m < 1e-3, 0.0, m)
    if m.max() <= 0:
        return face_mask(shape, (W * 0.25, H * 0.2, W * 0.5, H * 0.6), rng)
    return np.clip(m / m.max(), 0.0, 1.0).astype(np.float32)


def _elastic(mask: np.ndarray, amp: float, rng: np.random.Generator, grid: int = 4) -> np.ndarray:
    """Warp by a smooth random displacement field (a grid x grid field, cubic-interpolated), amplitude in px."""
    H, W = mask.shape
    dx = cv2.resize(rng.uniform(-1, 1, (grid, grid)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC) * amp
    dy = cv2.resize(rng.uniform(-1, 1, (grid, grid)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC) * amp
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    return cv2.remap(mask, (gx + dx).astype(np.float32), (gy + dy).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


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
    # elastic deformation: a smooth random displacement field, amplitude a few % of the face
    mask = _elastic(hard.astype(np.float32), rng.uniform(0.02, 0.08) * side, rng)
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


def _paper_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's source-target jitter (float32 HxWx3 in, out): RGB shift +-20, hue/saturation/value,
    brightness/contrast +-10 %, then either a 2-4x downscale-upscale or a sharpen."""
    f = img + rng.uniform(-20, 20, 3).astype(np.float32)
    hsv = cv2.cvtColor(np.clip(f, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-0.3, 0.3) * 18) % 180
    hsv[..., 1:] *= rng.uniform(0.7, 1.3, 2).astype(np.float32)
    f = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    mean = f.mean()
    f = (f - mean) * rng.uniform(0.9, 1.1) + mean * rng.uniform(0.9, 1.1)
    H, W = f.shape[:2]
    if rng.random() < 0.5:
        k = float(rng.choice([2.0, 4.0]))
        small = cv2.resize(f, (max(1, int(W / k)), max(1, int(H / k))), interpolation=cv2.INTER_AREA)
        f = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    else:
        blur = cv2.GaussianBlur(f, (0, 0), 1.0)
        f = f + rng.uniform(0.2, 0.5) * (f - blur)
    return np.clip(f, 0, 255)


def _paper_blend(rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    H, W = rgb.shape[:2]
    src, tgt = rgb.astype(np.float32), rgb.astype(np.float32)
    if rng.random() < 0.5:
        src = _paper_jitter(src, rng)
    else:
        tgt = _paper_jitter(tgt, rng)
    side = float(max(np.ptp(lm[:, 0]), np.ptp(lm[:, 1]), 8.0))
    cx, cy = lm.mean(0)
    s = rng.uniform(0.95, 1 / 0.95)
    tx, ty = rng.uniform(-0.03, 0.03, 2) * side
    M = np.array([[s, 0, (1 - s) * cx + tx], [0, s, (1 - s) * cy + ty]], np.float32)
    src = cv2.warpAffine(src, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = hull68_mask(rgb.shape, lm, rng) * float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]))
    m = mask[..., None]
    fake = np.clip(src * m + tgt * (1.0 - m) + 0.5, 0, 255).astype(np.uint8)
    return fake, mask.astype(np.float32)


def self_blend(rgb: np.ndarray, landmarks_or_box, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A self-blended fake of a real face image.

    rgb: HxWx3 uint8; landmarks_or_box: (68, 2) dense landmarks (the paper's recipe), (5, 2) YuNet landmarks
    (right eye, left eye, nose, mouth corners) or an (x, y, w, h) face box, in pixels of rgb; rng: numpy
    Generator (deterministic for a seed). Returns (fake uint8 same size, blend mask float32 in [0, 1]); with 5
    landmarks or a box, pixels where the mask is 0 are unchanged (with 68, the target copy may be jittered).
    """
    rgb = np.ascontiguousarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("rgb must be an HxWx3 uint8 array")
    box, lm = _face_geometry(landmarks_or_box)
    if lm is not None and len(lm) == 68:
        return _paper_blend(rgb, lm, rng)
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
