"""Face quality gates: the measures on synthetic crops and landmarks, the gates' reasons, and the threshold rule."""
import math

import cv2
import numpy as np
import pytest

from deepfake import quality
from deepfake.errors import ModelLoadError
from deepfake.faces import Face
from deepfake.quality import DEFAULT_GATES, REASONS, FaceQuality, QualityGates, measure
from deepfake.train import gates

FACE = Face((26, 26, 172, 172), 0.9)  # the face of a 224 px crop of margin 1.3
GATES = QualityGates(min_side_px=48.0, min_sharpness=100.0, min_brightness=40.0, max_yaw=0.8)


def checkerboard(a: int, b: int, square: int = 8, size: int = 224) -> np.ndarray:
    """RGB grey checkerboard; at 112 px its squares are 4 px and the central 68 px hold as many a as b pixels."""
    i = np.arange(size) // square
    grey = np.where((i[:, None] + i[None, :]) % 2 == 0, a, b).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def reference_sharpness(crop: np.ndarray) -> float:
    """The definition, re-implemented without OpenCV's Laplacian: 112 px grey, central 60%, mean rescaled to 100,
    4-neighbour Laplacian with mirrored borders, variance."""
    grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (112, 112), interpolation=cv2.INTER_AREA)
    g = grey[22:90, 22:90].astype(np.float64)
    g = g * (100.0 / g.mean())
    p = np.pad(g, 1, mode="reflect")
    lap = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * g
    return float(lap.var())


def test_sharpness_is_the_laplacian_variance_of_the_central_region_and_blur_lowers_it():
    sharp = checkerboard(60, 190)
    q = measure(FACE, sharp)
    assert q.sharpness == pytest.approx(reference_sharpness(sharp), abs=0.01)
    assert q.brightness == 125.0  # (60 + 190) / 2: equal counts of both in the central region
    blurred = measure(FACE, cv2.GaussianBlur(sharp, (0, 0), 4.0))
    assert blurred.sharpness < 0.1 * q.sharpness
    assert blurred.brightness == pytest.approx(125.0, abs=1.0)
    gates_ = QualityGates(48.0, (q.sharpness + blurred.sharpness) / 2, 40.0, 0.8)
    assert gates_.reasons(q) == ()
    assert gates_.reasons(blurred) == ("blurred",)


def test_sharpness_does_not_depend_on_exposure_so_a_dark_sharp_face_is_not_blurred():
    bright, dark = measure(FACE, checkerboard(45, 171)), measure(FACE, checkerboard(15, 57))  # 3x darker
    assert dark.sharpness == pytest.approx(bright.sharpness, rel=1e-9)
    assert (bright.brightness, dark.brightness) == (108.0, 36.0)
    assert GATES.reasons(dark) == ("too_dark",)
    assert GATES.reasons(bright) == ()


def test_a_flat_crop_has_sharpness_zero_and_its_grey_level_as_brightness():
    q = measure(FACE, np.full((224, 224, 3), 37, np.uint8))
    assert (q.sharpness, q.brightness) == (0.0, 37.0)
    assert GATES.reasons(q) == ("blurred", "too_dark")
    assert measure(FACE, np.zeros((224, 224, 3), np.uint8)).sharpness == 0.0  # black: nothing to see


def test_measures_do_not_depend_on_the_crop_size():
    small = cv2.resize(checkerboard(60, 190), (112, 112), interpolation=cv2.INTER_AREA)
    assert measure(FACE, small).sharpness == measure(FACE, checkerboard(60, 190)).sharpness


def test_face_too_small_below_min_side_and_not_at_it():
    crop = checkerboard(60, 190)
    assert measure(Face((5, 5, 30, 47), 1.0), crop).side_px == 47.0
    assert GATES.reasons(measure(Face((5, 5, 30, 47), 1.0), crop)) == ("face_too_small",)
    assert GATES.reasons(measure(Face((5, 5, 48, 40), 1.0), crop)) == ()


FRONTAL = ((40.0, 50.0), (80.0, 50.0), (60.0, 70.0), (45.0, 90.0), (75.0, 90.0))  # eyes, nose, mouth corners
TURNED = ((40.0, 50.0), (80.0, 50.0), (80.0, 70.0), (45.0, 90.0), (75.0, 90.0))  # nose in line with an eye


def _rotated(points, degrees, centre=(60.0, 70.0)):
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    return tuple((centre[0] + c * (x - centre[0]) - s * (y - centre[1]),
                  centre[1] + s * (x - centre[0]) + c * (y - centre[1])) for x, y in points)


def test_yaw_from_landmarks_frontal_turned_and_rolled():
    assert quality.yaw_of(FRONTAL) == 0.0
    assert quality.yaw_of(TURNED) == 1.0  # nose offset 20 px / half the 40 px inter-eye distance
    half = ((40.0, 50.0), (80.0, 50.0), (70.0, 70.0), (45.0, 90.0), (75.0, 90.0))
    assert quality.yaw_of(half) == 0.5
    # a tilted head is not a turned one
    assert quality.yaw_of(_rotated(FRONTAL, 30)) == 0.0
    assert quality.yaw_of(_rotated(TURNED, -25)) == 1.0
    # eyes on one point (side-on) is the cap
    assert quality.yaw_of(((50, 50), (50, 50), (70, 60), (50, 80), (50, 80))) == 10.0


def test_profile_gate_on_turned_faces_only_and_never_without_landmarks():
    crop = checkerboard(60, 190)
    frontal, turned = measure(Face(FACE.box, 0.9, FRONTAL), crop), measure(Face(FACE.box, 0.9, TURNED), crop)
    assert (frontal.yaw, turned.yaw) == (0.0, 1.0)
    assert GATES.reasons(frontal) == ()
    assert GATES.reasons(turned) == ("profile",)
    haar = measure(Face(FACE.box, 1.0, None), crop)
    assert haar.yaw is None
    assert QualityGates(48.0, 0.0, 0.0, max_yaw=0.0).reasons(haar) == ()


def test_reasons_come_in_reasons_order():
    assert REASONS == ("face_too_small", "blurred", "too_dark", "profile")
    worst = FaceQuality(side_px=10.0, sharpness=1.0, brightness=5.0, yaw=3.0)
    assert GATES.reasons(worst) == REASONS
    assert GATES.reasons(FaceQuality(10.0, 500.0, 5.0, None)) == ("face_too_small", "too_dark")
    assert GATES.reasons(FaceQuality(100.0, 1.0, 100.0, 0.9)) == ("blurred", "profile")


def test_quality_and_gates_are_json_ready():
    q = measure(Face(FACE.box, 0.9, TURNED), checkerboard(60, 190))
    d = q.to_dict()
    assert set(d) == {"side_px", "sharpness", "brightness", "yaw"}
    assert all(type(v) is float for v in d.values())
    assert quality.measure_all([Face(FACE.box, 0.9, TURNED)] * 2, [checkerboard(60, 190)] * 2) == [q, q]


def test_gates_round_trip_and_missing_keys_fall_back_to_the_defaults():
    assert QualityGates.from_dict(GATES.to_dict()) == GATES
    assert QualityGates.from_dict({}) == DEFAULT_GATES
    partial = QualityGates.from_dict({"max_yaw": 2, "min_side_px": 64})
    assert partial == QualityGates(64.0, DEFAULT_GATES.min_sharpness, DEFAULT_GATES.min_brightness, 2.0)
    assert type(partial.max_yaw) is float


@pytest.mark.parametrize("bad, words", [
    ({"min_side_px": "48"}, "'min_side_px' must be a finite number >= 0, got '48'"),
    ({"min_sharpness": -1}, "'min_sharpness' must be a finite number >= 0, got -1"),
    ({"min_brightness": True}, "'min_brightness' must be a finite number >= 0, got True"),
    ({"max_yaw": float("nan")}, "'max_yaw' must be a finite number >= 0, got nan"),
    ({"min_side": 48}, "unknown key(s) 'min_side'"),
    ([48, 5, 40, 1], "must be an object, got list"),
])
def test_bad_gates_raise_model_load_error_naming_the_field(bad, words):
    with pytest.raises(ModelLoadError) as exc:
        QualityGates.from_dict(bad)
    assert words in str(exc.value)
    assert "quality_gates" in str(exc.value)


def test_default_gates_are_those_measured_in_docs_gates():
    import json

    path = gates.DEFAULT_OUT / "gates.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    assert QualityGates.from_dict(json.loads(path.read_text())["thresholds"]) == DEFAULT_GATES


# ------------------------------------------------------------------------------------ gates.py: the rule
# Two faces of each class per bin: scores in this order make the AUCs below exactly.
AUC_SCORES = {1.0: ([0.1, 0.2], [0.3, 0.4]), 0.75: ([0.1, 0.3], [0.2, 0.4]), 0.5: ([0.1, 0.4], [0.2, 0.3]),
              0.25: ([0.2, 0.4], [0.1, 0.3]), 0.0: ([0.3, 0.4], [0.1, 0.2])}


def synthetic(bin_values, bin_aucs):
    """values, labels, scores with two reals and two fakes at each value whose AUC is the one asked."""
    v, y, p = [], [], []
    for value, auc in zip(bin_values, bin_aucs):
        reals, fakes = AUC_SCORES[auc]
        v += [value] * 4
        y += [0, 0, 1, 1]
        p += reals + fakes
    return np.array(v, float), np.array(y), np.array(p)


EDGES = (0, 10, 20, 30, 40, 50)


def test_bin_table_counts_and_aucs_are_exact():
    v, y, p = synthetic([5, 15, 25, 35], [0.0, 0.5, 0.75, 1.0])
    v = np.append(v, [np.nan, 45]), np.append(y, [1, 1]), np.append(p, [0.9, 0.9])
    table = gates.bin_table(*v, EDGES, min_per_class=2)
    assert [(r["lo"], r["hi"], r["n"], r["n_real"], r["n_fake"], r["auc"]) for r in table] == [
        (0.0, 10.0, 4, 2, 2, 0.0), (10.0, 20.0, 4, 2, 2, 0.5), (20.0, 30.0, 4, 2, 2, 0.75),
        (30.0, 40.0, 4, 2, 2, 1.0), (40.0, 50.0, 1, 0, 1, None)]  # NaN left out; one class only: not rated
    assert gates.bin_table(*synthetic([5], [1.0]), EDGES, min_per_class=3)[0]["auc"] is None


def test_within_source_auc_counts_only_same_source_pairs():
    # source a: AUC 1; source b (all scored higher): AUC 0.5; pooled, b's reals outrank a's fakes
    y = np.array([0, 0, 1, 1, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.5, 0.8, 0.9])
    s = np.array(["a"] * 4 + ["b"] * 4 + ["c"])  # c: one class only, no pairs
    auc, n_real, n_fake = gates.within_source_auc(y, p, s)
    assert (auc, n_real, n_fake) == (0.75, 4, 4)
    row = gates.bin_table(np.ones(9), y, p, (0, 2), s, min_per_class=4)[0]
    assert (row["auc"], row["auc_pooled"], row["n"], row["n_fake"]) == (0.75, round(14 / 20, 4), 9, 5)
    assert gates.bin_table(np.ones(9), y, p, (0, 2), s, min_per_class=5)[0]["auc"] is None
    assert gates.within_source_auc(y[:2], p[:2], s[:2]) == (None, 0, 0)


@pytest.mark.parametrize("aucs, direction, expected", [
    ([0.0, 0.5, 0.75, 1.0], "min", 20.0),  # fails below 20
    ([0.5, 0.75, 0.5, 1.0], "min", 30.0),  # the first failing bin from the best end decides
    ([0.75, 0.75, 1.0, 1.0], "min", 0.0),  # nothing fails: the end of the range measured
    ([0.25, 0.5, 0.25, 0.5], "min", 40.0),  # everything fails: no face is judged
    ([1.0, 0.75, 0.5, 0.25], "max", 20.0),  # fails above 20
    ([1.0, 0.75, 1.0, 0.75], "max", 40.0),
    ([0.5, 1.0, 1.0, 1.0], "max", 0.0),
])
def test_choose_gate_on_known_tables(aucs, direction, expected):
    table = gates.bin_table(*synthetic([5, 15, 25, 35], aucs), EDGES, min_per_class=2)
    assert gates.choose_gate(table, direction, level=0.65) == expected


def test_choose_gate_skips_unrated_bins():
    # the 15 bin has one class only; 5 fails, 25 and 35 pass: the gate is where the 5 bin ends
    v, y, p = synthetic([5, 25, 35], [0.5, 1.0, 1.0])
    v, y, p = np.append(v, [15, 15]), np.append(y, [1, 1]), np.append(p, [0.1, 0.2])
    table = gates.bin_table(v, y, p, EDGES, min_per_class=2)
    assert table[1]["auc"] is None
    assert gates.choose_gate(table, "min", 0.65) == 10.0
    with pytest.raises(ValueError):
        gates.choose_gate([dict(r, auc=None) for r in table], "min")
    with pytest.raises(ValueError):
        gates.choose_gate(table, "up")


def test_measure_gates_bins_each_measure_over_its_own_copies():
    sv, sy, sp = synthetic([5, 15, 25, 35], [0.0, 0.5, 1.0, 1.0])  # downscaled copies: side fails below 20
    bv, by, bp = synthetic([35, 35], [0.0, 0.0])  # blurred copies, all in the top bin, scored backwards
    cv_, cy, cp = synthetic([35], [1.0])  # clean faces
    n_s, n_b, n_c = len(sv), len(bv), len(cv_)
    rows = {"family": np.array(["small"] * n_s + ["blur"] * n_b + ["clean"] * n_c),
            "label": np.concatenate([sy, by, cy]), "score": np.concatenate([sp, bp, cp]),
            "side_px": np.concatenate([sv, bv, cv_]), "sharpness": np.concatenate([sv, bv, cv_]),
            "brightness": np.concatenate([sv, bv, cv_]),
            "yaw": np.concatenate([np.full(n_s + n_b, np.nan), np.full(n_c, 0.05)])}
    edges = dict(side_px=EDGES, sharpness=EDGES, brightness=EDGES, yaw=(0, 0.1, 1.0))
    out = gates.measure_gates(rows, 0.65, 2, edges)
    # side: clean + small only (with the blurred copies the top bin's AUC would be 1/3 and the gate 40)
    assert out["side_px"]["families"] == ["clean", "small"]
    assert out["side_px"]["threshold"] == 20.0
    assert [r["n"] for r in out["side_px"]["table"]] == [4, 4, 4, 8, 0]
    # sharpness: clean + blur: the top bin holds 4 clean (AUC 1) and 8 blurred (AUC 0) faces
    assert out["sharpness"]["table"][3]["auc"] == round(8 / 24, 4)
    assert out["sharpness"]["threshold"] == 40.0  # its only rated bin fails: no face is judged
    # brightness: clean faces only here (no dark copies): the end of the range measured
    assert out["brightness"]["threshold"] == 30.0
    # yaw: clean faces only, all frontal: validated up to the edge of their bin
    assert out["yaw"]["threshold"] == 0.1
    assert out["yaw"]["direction"] == "max"


def test_measure_gates_leaves_a_measure_with_no_rated_bin_unset():
    v, y, p = synthetic([5], [1.0])
    rows = {"family": np.array(["clean"] * 4), "label": y, "score": p, "side_px": v, "sharpness": v,
            "brightness": v, "yaw": np.full(4, np.nan)}  # a Haar run: no landmarks
    out = gates.measure_gates(rows, 0.65, 2, dict(side_px=EDGES, sharpness=EDGES, brightness=EDGES, yaw=(0, 1)))
    assert out["yaw"]["threshold"] is None
    assert out["side_px"]["threshold"] == 0.0


def test_darken_and_face_copies():
    assert gates.darken(np.array([[0, 255, 128]], np.uint8), 0.25, 2.0).tolist() == [[0, 64, 16]]
    rgb = checkerboard(60, 190, size=400)
    face = Face((100, 100, 60, 60), 0.9, FRONTAL)
    from deepfake.crop import CropRecipe, crop_face

    crop = crop_face(rgb, face.box, CropRecipe())[0]
    copies = gates.face_copies(rgb, face, crop, CropRecipe())
    fams = [c[0] for c in copies]
    assert fams == ["clean"] + ["small"] * 5 + ["blur"] * 6 + ["dark"] * 6  # only sizes below 60 px
    assert [c[2].side for c in copies if c[0] == "small"] == [26, 30, 36, 44, 56]
    assert all(c[3].shape == (224, 224, 3) for c in copies)
    small26 = copies[1][2]
    assert small26.landmarks[0] == pytest.approx((40 * 26 / 60, 50 * 26 / 60))
    assert gates.face_copies(rgb, face, crop, CropRecipe(), degrade=False) == copies[:1]
