"""Equality of answers (JSON-like values and pictures) up to float noise."""
from __future__ import annotations

TOLERANCE = 1e-6


def same(a, b, tol: float = TOLERANCE) -> bool:
    """Equal JSON-like values, floats within tol, pictures within one grey level."""
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.shape != b.shape:
            return False
        return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max(initial=0)) <= 1
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= tol
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, tol) for x, y in zip(a, b))
    return a == b
