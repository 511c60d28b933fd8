"""Training, evaluation and push helpers: SBI, ImageNet weight mapping, identity splits, push dry run,
evaluate metrics."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from deepfake.errors import InputError  # noqa: E402
from deepfake.hub import BUNDLED_MODEL  # noqa: E402
from deepfake.train import commands, data  # noqa: E402
from deepfake.train.sbi import self_blend  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
YUNET = SHARED / "models" / "face_detection_yunet_2023mar.onnx"


def _run(*argv) -> int:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


# ------------------------------------------------------------------------------------ SBI
def _textured(seed=0, size=160):
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(int) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("geometry", ["box", "landmarks"])
def test_self_blend_changes_only_inside_mask_and_mask_peaks_on_face(geometry):
    img = _textured()
    box = (50, 40, 60, 70)
    lms = np.array([[65, 62], [95, 62], [80, 78], [68, 94], [92, 94]], float)
    for seed in range(5):
        fake, mask = self_blend(img, box if geometry == "box" else lms, np.random.default_rng(seed))
        assert fake.shape == img.shape and fake.dtype == np.uint8
        assert mask.shape == img.shape[:2] and mask.dtype == np.float32
        assert 0.0 <= mask.min() and mask.max() <= 1.0 and mask.max() > 0.4
        support = cv2.dilate((mask > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        changed = np.any(fake != img, axis=2)
        assert changed.any(), "the blend changed nothing"
        assert not (changed & ~support).any(), "pixels outside the (dilated) mask changed"
        py, px = np.unravel_index(int(np.argmax(mask)), mask.shape)
        x, y, w, h = box
        assert x <= px < x + w and y <= py < y + h, "mask peak is not on the face"
        assert mask[0, 0] == 0 and mask[-1, -1] == 0, "mask reaches the image corners"
    again, _ = self_blend(img, box, np.random.default_rng(4))
    assert np.array_equal(again, self_blend(img, box, np.random.default_rng(4))[0]), "not deterministic for a seed"


def test_self_blend_rejects_bad_geometry():
    with pytest.raises(ValueError):
        self_blend(_textured(), np.zeros(3), np.random.default_rng(0))


# ------------------------------------------------------------------------------------ ImageNet mapping
@pytest.mark.parametrize("arch,size", [("tf_efficientnet_lite0", 224), ("tf_efficientnet_lite2", 260)])
def test_imagenet_mapping_ranks_imagenet_class(arch, size):
    import timm
    import torch
    from skimage import data as skdata

    from deepfake.train.pretrained import imagenet_state

    torch.set_num_threads(1)
    net = timm.create_model(arch, pretrained=False)
    net.load_state_dict(imagenet_state(arch), strict=True)
    net.eval()
    img = cv2.resize(skdata.chelsea(), (size, size), interpolation=cv2.INTER_AREA)
    x = (torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0 - 0.5) / 0.5
    with torch.inference_mode():
        top = int(net(x).argmax(1))
    assert top in (281, 282, 283, 284, 285), f"cat photo classified as ImageNet class {top}"


# ------------------------------------------------------------------------------------ pairing and splits
def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_a_reals_only_folder_keeps_its_real_split_and_drops_its_fakes(tmp_path):
    """DIR#real: the folder is split with its fakes (so each real face lands where it lands for a model trained on
    DIR), then its fakes are left out; another folder is untouched; the sources are recorded as reals-only."""
    for name in ("a", "b"):
        for label in ("real", "fake"):
            for i in range(8):
                _write(tmp_path / name / label / f"{label}_{i:02d}.png", _textured(seed=i, size=32))
    plain = data.make_splits([tmp_path / "a", tmp_path / "b"], [], 0.25, 0)
    only = data.make_splits([f"{tmp_path / 'a'}#real", tmp_path / "b"], [], 0.25, 0)
    for split in data.SPLITS:
        want = [it.path for it in plain[split] if not (it.source == "a" and it.label == 1)]
        assert [it.path for it in only[split]] == want
    assert sum(it.source == "a" and it.label == 1 for it in plain["train"]) > 0  # there were fakes to drop
    assert data.reals_only_sources([f"{tmp_path / 'a'}#real", tmp_path / "b"]) == {"a"}
    assert data.folder_of(f"{tmp_path / 'a'}#real") == tmp_path / "a" and data.source_of(tmp_path / "b") == "b"


def test_dfdc_pairs_found_and_kept_on_one_side(tmp_path):
    folder = tmp_path / "dfdc_faces"
    rng = np.random.default_rng(1)
    truth = {}
    for i in range(12):
        real = _textured(seed=100 + i, size=64)
        fake = real.copy()
        fake[20:44, 20:44] = np.clip(fake[20:44, 20:44].astype(int) + rng.integers(-40, 41, (24, 24, 3)), 0, 255)
        rname, fname = f"src{i:02d}", f"zz{(i * 7) % 12:02d}x{i}"  # fake names unrelated to the real one
        _write(folder / "real" / f"{rname}.png", real)
        _write(folder / "fake" / f"{fname}.png", fake)
        truth[fname] = "file:" + rname
    (folder / "pairs.csv").write_text("source_video\n" + "\n".join(f"src{i:02d}.mp4" for i in range(12)) + "\n")
    items = data.list_items(folder)
    fakes = {it.path.stem: it.group for it in items if it.label == 1}
    assert fakes == truth
    for seed in range(4):
        splits = data.split_items(items, 0.5, seed)
        side = {}
        for s, its in splits.items():
            for it in its:
                assert side.setdefault(it.group, s) == s, f"group {it.group} on two sides"
        assert all(splits[s] for s in data.SPLITS)


def test_identity_groups_for_videos(tmp_path):
    names = {
        "real": ["ffpp_original_sequences_youtube_c23_videos_004", "ffpp_original_sequences_youtube_c23_videos_519",
                 "RealObama", "RealClinton"],
        "fake": ["ffpp_manipulated_sequences_Deepfakes_c23_videos_519_515",
                 "ffpp_manipulated_sequences_NeuralTextures_c23_videos_004_982", "FakeObama", "FakeClinton"],
    }
    for label, stems in names.items():
        for stem in stems:
            (tmp_path / "videos" / label).mkdir(parents=True, exist_ok=True)
            (tmp_path / "videos" / label / f"{stem}.mp4").write_bytes(b"")
    items = data.list_items(tmp_path / "videos")
    groups = {it.path.stem: it.group for it in items}
    # a fake A_B joins originals A and B in one group, named by the smallest id
    assert groups["ffpp_manipulated_sequences_Deepfakes_c23_videos_519_515"] == "ffpp:515"
    assert groups["ffpp_original_sequences_youtube_c23_videos_519"] == "ffpp:515"
    assert groups["ffpp_original_sequences_youtube_c23_videos_004"] == "ffpp:004"
    assert groups["ffpp_manipulated_sequences_NeuralTextures_c23_videos_004_982"] == "ffpp:004"
    assert groups["FakeObama"] == groups["RealObama"] == "person:obama"
    for seed in range(6):
        splits = data.split_items(items, 0.5, seed)
        side = {it.group: s for s, its in splits.items() for it in its}
        for s, its in splits.items():
            assert all(side[it.group] == s for it in its)


def test_ffpp_video_groups_join_both_originals_of_every_fake(tmp_path):
    """videos_ffpp: originals A and B and every fake made from either (both compressions) are one group."""
    stems = {"real": ["ffpp_c23_original_183", "ffpp_c40_original_253", "ffpp_c23_original_469",
                      "ffpp_c40_original_481"],
             "fake": ["ffpp_c23_Deepfakes_183_253", "ffpp_c40_FaceSwap_253_183", "ffpp_c23_FaceShifter_469_481"]}
    for label, names in stems.items():
        (tmp_path / "videos_ffpp" / label).mkdir(parents=True, exist_ok=True)
        for stem in names:
            (tmp_path / "videos_ffpp" / label / f"{stem}.mp4").write_bytes(b"")
    groups = {it.path.stem: it.group for it in data.list_items(tmp_path / "videos_ffpp")}
    assert {groups[n] for n in ("ffpp_c23_original_183", "ffpp_c40_original_253", "ffpp_c23_Deepfakes_183_253",
                                "ffpp_c40_FaceSwap_253_183")} == {"ffpp:183"}
    assert {groups[n] for n in ("ffpp_c23_original_469", "ffpp_c40_original_481",
                                "ffpp_c23_FaceShifter_469_481")} == {"ffpp:469"}


def test_flux_faces_group_by_person():
    assert data.identity_of("gonzalez_0035fbe8e7b7") == data.identity_of("gonzalez_00a8cc2bac19") == "person:gonzalez"
    assert data.identity_of("real_00001") == "person:00001"  # ciplab names keep their old groups
    assert data.identity_of("aaivbtdyjn") == "file:aaivbtdyjn"


def test_train_only_folders_never_reach_validation_or_test(tmp_path):
    main, extra = tmp_path / "main", tmp_path / "ffpp_faces"
    for folder, n in ((main, 8), (extra, 5)):
        for label in ("real", "fake"):
            (folder / label).mkdir(parents=True)
            for i in range(n):
                (folder / label / f"{label}{i}.png").write_bytes(b"")
    with_extra = data.make_splits([main], [], 0.5, 0, train_only_dirs=[extra])
    without = data.make_splits([main], [], 0.5, 0)
    assert sorted(it.path.name for it in with_extra["train"] if it.source == "ffpp_faces") == sorted(
        f"{label}{i}.png" for label in ("real", "fake") for i in range(5))
    for split in ("val", "test"):
        assert with_extra[split] == without[split] and with_extra[split]


def test_exclusion_list_leaves_listed_training_items_out_by_path_suffix(tmp_path):
    items = [data.Item(Path(f"/x/shared/data/images/ffpp_faces/{lab}/{name}"), int(lab == "fake"), "ffpp_faces",
                       name, "image") for lab, name in (("real", "a.jpg"), ("real", "b.jpg"), ("fake", "a.jpg"))]
    listing = tmp_path / "list.txt"
    listing.write_text("# crops of held-out people\n\nimages/ffpp_faces/real/a.jpg\n"
                       "ffpp_faces\\fake\\a.jpg\nimages/ffpp_faces/real/missing.jpg\n  real/b.jpg  \n")
    listed = data.read_exclusions(listing)
    assert listed == ["images/ffpp_faces/real/a.jpg", "ffpp_faces/fake/a.jpg", "images/ffpp_faces/real/missing.jpg",
                      "real/b.jpg"]
    kept, matched = data.without_listed(items, listed)
    assert kept == [] and matched == 3
    kept, matched = data.without_listed(items, ["al/b.jpg", "a.jpg"])  # whole path components only
    assert [str(it.path) for it in kept] == ["/x/shared/data/images/ffpp_faces/real/b.jpg"] and matched == 1
    with pytest.raises(InputError, match="cannot be read"):
        data.read_exclusions(tmp_path / "absent.txt")


def test_subsampled_training_sets_keep_whole_groups_and_nest():
    items = [data.Item(Path(f"{g}_{k}.png"), k % 2, "s", f"g{g}", "image") for g in range(40) for k in range(3)]
    half, quarter = data.subsample_groups(items, 0.5, 0), data.subsample_groups(items, 0.25, 0)
    groups = lambda its: {it.group for it in its}  # noqa: E731
    assert set(quarter) <= set(half) < set(items)  # smaller fractions are subsets: one curve, not noise
    assert 10 <= len(groups(half)) <= 30 and len(groups(quarter)) < len(groups(half))
    assert all(len([it for it in half if it.group == g]) == 3 for g in groups(half))  # whole groups only
    assert data.subsample_groups(items, 1.0, 0) == items


def test_dense_landmarks_follow_the_face(yunet_onnx):
    """dlib's 68 points on the astronaut crop: the nose tip (30) and eye centres lie on YuNet's landmarks."""
    from skimage import data as skdata

    from deepfake.faces import CropRecipe, load_face_detector
    from deepfake.train.landmarks import dense_landmarks

    rgb = skdata.astronaut()
    recipe = CropRecipe(1.3, 224)
    crops = data.face_crops([rgb], load_face_detector(str(yunet_onnx)), recipe)
    lm68, lm5 = crops.landmarks68[0], crops.landmarks[0]
    assert lm68.shape == (68, 2) and np.isfinite(lm68).all()
    np.testing.assert_array_equal(lm68, dense_landmarks(crops.crops[0], crops.boxes[0]))
    side = crops.boxes[0][2]
    assert np.linalg.norm(lm68[30] - lm5[2]) < 0.08 * side  # nose tip
    eyes = sorted([lm68[36:42].mean(0), lm68[42:48].mean(0)], key=lambda p: p[0])
    for eye, yunet_eye in zip(eyes, sorted(lm5[:2], key=lambda p: p[0])):
        assert np.linalg.norm(eye - yunet_eye) < 0.08 * side


def test_self_blend_with_dense_landmarks_masks_the_hull():
    """The paper's recipe: the mask lies within the (deformed) landmark hull, peaks inside it, and is
    deterministic for a seed."""
    img = _textured(size=200)
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    lm = np.stack([100 + 45 * np.cos(t), 105 + 55 * np.sin(t)], 1)  # an ellipse of 68 points
    hull = np.zeros((200, 200), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(lm).astype(np.int32)), 1)
    near = cv2.dilate(hull, np.ones((41, 41), np.uint8)) > 0  # deformation and blur stay within ~20 px
    for seed in range(8):
        fake, mask = self_blend(img, lm, np.random.default_rng(seed))
        assert fake.shape == img.shape and mask.max() == pytest.approx(mask.max()) and mask.max() > 0.2
        assert not (mask[~near] > 0).any(), "mask leaves the landmark hull"
        py, px = np.unravel_index(int(np.argmax(mask)), mask.shape)
        assert hull[py, px], "mask peak outside the hull"
        assert np.abs(fake.astype(int) - img).max() > 0
    a, _ = self_blend(img, lm, np.random.default_rng(3))
    assert np.array_equal(a, self_blend(img, lm, np.random.default_rng(3))[0])


def _pair_dataset(identical: bool):
    """Two DFDC-like pairs (groups g0, g1) and one unpaired source; each fake equals its real when identical."""
    rng = np.random.default_rng(0)
    reals = [_textured(seed=i, size=224) for i in range(3)]
    fakes = [r.copy() if identical else np.clip(r.astype(int) + 30, 0, 255).astype(np.uint8) for r in reals]
    items = [data.Item(Path(f"r{i}.png"), 0, "dfdc_faces" if i < 2 else "other", f"g{i}", "image") for i in range(3)]
    items += [data.Item(Path(f"f{i}.png"), 1, "dfdc_faces" if i < 2 else "other", f"g{i}" if i < 2 else "h",
                        "image") for i in range(3)]
    crops = np.stack(reals + fakes)
    n = len(crops)
    ds = data.Dataset(crops, np.full((n, 5, 2), np.nan, np.float32),
                      np.tile(np.array([40, 30, 140, 160], np.float32), (n, 1)), np.array([0, 0, 0, 1, 1, 1]),
                      np.arange(n), items, np.full((n, 68, 2), np.nan, np.float32))
    del rng
    return ds


def test_pairs_share_one_augmentation_and_labelled_fakes_meet_their_real():
    from deepfake.train.train import Sampler, TrainOptions

    ds = _pair_dataset(identical=True)
    sampler = Sampler(ds, TrainOptions(dirs=[], out=Path("x"), sbi_ratio=0.0, batch_size=16),
                      np.random.default_rng(5))
    x, y = sampler.batch()
    assert x.shape == (16, 224, 224, 3) and list(y) == [0, 1] * 8
    # each fake here equals its real source, so one shared augmentation gives identical pixels
    for k in range(0, 16, 2):
        np.testing.assert_array_equal(x[k], x[k + 1])
    # a labelled fake is paired with the real face of its own group (DFDC pair); else its source's real
    ds = _pair_dataset(identical=False)
    sampler = Sampler(ds, TrainOptions(dirs=[], out=Path("x"), sbi_ratio=0.0), np.random.default_rng(1))
    for _ in range(30):
        real, fake = sampler.pair()
        f = next(i for i in range(3, 6) if np.array_equal(ds.crops[i], fake))
        r = next(i for i in range(3) if np.array_equal(ds.crops[i], real))
        assert r == f - 3


def test_sharpness_matching_blurs_the_sharper_member_to_the_other(astronaut):
    """--match-sharpness: the sharper crop of a labelled pair is blurred until the `blurred` gate's measure agrees
    with its partner's (within 5 %); the blurrier one is passed through untouched, whichever side it is on."""
    from deepfake.quality import sharpness
    from deepfake.train.train import match_sharpness

    sharp = cv2.resize(astronaut[:300, 100:400], (224, 224), interpolation=cv2.INTER_AREA)
    soft = cv2.GaussianBlur(sharp, (0, 0), 1.3)
    assert sharpness(sharp) > 2 * sharpness(soft)
    for real, fake in ((sharp, soft), (soft, sharp)):
        a, b = match_sharpness(real, fake)
        kept = b if real is sharp else a
        assert kept is soft
        assert sharpness(a) == pytest.approx(sharpness(b), rel=0.05)
    a, b = match_sharpness(soft, soft.copy())  # equal sharpness: nothing to blur
    np.testing.assert_array_equal(a, soft)
    np.testing.assert_array_equal(b, soft)


def test_lowres_sbi_blends_into_a_low_resolution_copy_of_the_real_face(astronaut):
    """--lowres-sbi 1: every self-blended pair is (low-resolution copy of the real face, its self-blend): the real
    member is the crop downscaled to 25-60 % of its side and back (sharpness far below the crop's), and the blend is
    made after that downscale, so the two members differ inside the face and not outside the blend mask."""
    from deepfake.quality import sharpness
    from deepfake.train.train import Sampler, TrainOptions, low_resolution

    crop = cv2.resize(astronaut[:300, 100:400], (224, 224), interpolation=cv2.INTER_AREA)
    items = [data.Item(Path("r.png"), 0, "ciplab", "g0", "image")]
    ds = data.Dataset(crop[None], np.full((1, 5, 2), np.nan, np.float32),
                      np.array([[52, 40, 120, 140]], np.float32), np.array([0]), np.arange(1), items,
                      np.full((1, 68, 2), np.nan, np.float32))
    full = sharpness(crop)
    for lowres, seed in ((1.0, 0), (1.0, 1), (0.0, 0)):
        sampler = Sampler(ds, TrainOptions(dirs=[], out=Path("x"), sbi_ratio=1.0, lowres_sbi=lowres),
                          np.random.default_rng(seed))
        real, fake = sampler.pair()
        if lowres:
            assert sharpness(real) < 0.5 * full  # at most 60 % of the side: most of the detail is gone
        else:
            np.testing.assert_array_equal(real, crop)  # off: the bundled recipe's pair, untouched
        diff = np.abs(fake.astype(int) - real).max(axis=2)
        assert diff[100:130, 100:130].max() > 0  # the face centre is blended
        assert diff[:20].max() == 0 and diff[:, :20].max() == 0  # outside the box-extrapolated mask: the real
    # the downscale keeps the size and is deterministic for a seed
    a = low_resolution(crop, np.random.default_rng(3), 0.25, 0.6)
    assert a.shape == crop.shape and np.array_equal(a, low_resolution(crop, np.random.default_rng(3), 0.25, 0.6))


def test_validation_scores_videos_by_their_frame_mean_and_splits_cross_source():
    from deepfake.train.train import item_scores, validation_aucs

    items = [data.Item(Path("a.png"), 0, "seen", "1", "image"), data.Item(Path("b.png"), 1, "seen", "2", "image"),
             data.Item(Path("r.mp4"), 0, "unseen", "3", "video"), data.Item(Path("f.mp4"), 1, "unseen", "4", "video"),
             data.Item(Path("f2.mp4"), 1, "unseen", "5", "video")]
    item_index = np.array([0, 1, 2, 2, 2, 3, 3, 4, 4])
    scores = np.array([0.2, 0.9, 0.1, 0.9, 0.5, 0.4, 0.6, 0.3, 0.4])  # video means 0.5, 0.5, 0.35
    ds = data.Dataset(np.zeros((9, 2, 2, 3), np.uint8), np.zeros((9, 5, 2)), np.zeros((9, 4)),
                      np.array([items[i].label for i in item_index]), item_index, items)
    labels, means, sources = item_scores(ds, scores)
    np.testing.assert_allclose(means, [0.2, 0.9, 0.5, 0.5, 0.35])
    assert list(labels) == [0, 1, 0, 1, 1] and list(sources) == ["seen"] * 2 + ["unseen"] * 3
    v = validation_aucs(ds, scores, {"unseen"})
    assert v["in_source"] == {"seen": 1.0} and v["cross_source"] == {"unseen": pytest.approx(0.25)}
    assert v["select"] == pytest.approx(0.25)  # checkpoints are chosen on the unseen source
    assert validation_aucs(ds, scores, set())["select"] == pytest.approx(0.625)
    # a source with 5 items of each class chooses alone; the one with a single real video no longer counts
    big = [data.Item(Path(f"{i}.png"), i % 2, "big", str(10 + i), "image") for i in range(10)]
    ds2 = data.Dataset(np.zeros((19, 2, 2, 3), np.uint8), np.zeros((19, 5, 2)), np.zeros((19, 4)),
                       np.concatenate([ds.labels, [it.label for it in big]]),
                       np.concatenate([item_index, np.arange(5, 15)]), items + big)
    big_scores = np.array([0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.9, 0.4, 0.5, 0.55])  # 19 of 25 pairs ranked right
    v2 = validation_aucs(ds2, np.concatenate([scores, big_scores]), {"unseen", "big"})
    assert v2["cross_source"] == {"big": pytest.approx(0.76), "unseen": pytest.approx(0.25)}
    assert v2["select"] == pytest.approx(0.76) and v2["select_sources"] == ["big"]


def test_training_log_is_closed_when_training_fails(tmp_path, monkeypatch):
    from deepfake.train import train as train_mod

    folder = tmp_path / "src"
    for label in ("real", "fake"):
        (folder / label).mkdir(parents=True)
        (folder / label / "x.png").write_bytes(b"")
    opened = []
    real_open = open

    def tracking_open(*a, **kw):
        fh = real_open(*a, **kw)
        opened.append(fh)
        return fh

    def boom(*a, **kw):
        raise RuntimeError("face detector exploded")

    monkeypatch.setattr(train_mod, "load_face_detector", boom)
    monkeypatch.setattr("builtins.open", tracking_open)
    with pytest.raises(RuntimeError, match="exploded"):
        train_mod.train(train_mod.TrainOptions(dirs=[folder], out=tmp_path / "out", log_dir=tmp_path / "log"))
    logs = [fh for fh in opened if str(getattr(fh, "name", "")).endswith("train.log")]
    assert logs and all(fh.closed for fh in logs)


# ------------------------------------------------------------------------------------ push
needs_model = pytest.mark.skipif(not (BUNDLED_MODEL / "model.safetensors").is_file(),
                                 reason="bundled model not trained yet")


@needs_model
def test_push_dry_run_on_bundled_model(capsys):
    assert _run("push", "--model", BUNDLED_MODEL, "--repo", "someone/detector", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "model.safetensors" in out and "README.md" in out and "nothing uploaded" in out


@needs_model
def test_push_dry_run_exports_no_onnx(monkeypatch, capsys):
    from deepfake import model

    def no_export(*a, **kw):
        raise AssertionError("push --dry-run exported the network to ONNX")

    monkeypatch.setattr(model.Network, "use_onnxruntime", no_export)
    monkeypatch.setenv("DEEPFAKE_BACKEND", "onnxruntime")
    assert _run("push", "--model", BUNDLED_MODEL, "--repo", "someone/detector", "--dry-run") == 0
    assert "nothing uploaded" in capsys.readouterr().out


@needs_model
def test_push_dry_run_refuses_broken_folders(tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(BUNDLED_MODEL, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    assert _run("push", "--model", broken, "--repo", "a/b", "--dry-run") == 1
    assert "corrupt" in capsys.readouterr().err
    nocard = tmp_path / "nocard"
    shutil.copytree(BUNDLED_MODEL, nocard)
    (nocard / "README.md").unlink()
    assert _run("push", "--model", nocard, "--repo", "a/b", "--dry-run") == 1
    assert "README.md is missing" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ evaluate
@needs_model
def test_evaluate_metrics_equal_sklearn(tmp_path):
    """The metrics are right on scores whose answers are worked out by hand, and an evaluate run reports the
    scores the Detector gives each file (textures: no face, so the whole-image fallback, counted)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    from deepfake import load_detector
    from deepfake.train.evaluate import binary_metrics, summarise

    # 3 real, 2 fake; threshold 0.5 and a fake scored exactly 0.5 (>= threshold is FAKE, as at inference).
    # Pairs (fake, real) ranked right: 0.5 > 0.2, tie with 0.5 (half), 0.5 < 0.7, 0.9 above all three:
    # AUC = (1 + 0.5 + 0 + 3) / 6. Predicted FAKE: 0.5, 0.7 (real) and 0.5, 0.9 (fake): TP 2, FP 2, TN 1, FN 0.
    known = binary_metrics([0, 0, 0, 1, 1], [0.2, 0.5, 0.7, 0.5, 0.9], 0.5)
    assert known["auc"] == pytest.approx(0.75) and known["accuracy"] == pytest.approx(0.6)
    assert known["precision"] == pytest.approx(0.5) and known["recall"] == pytest.approx(1.0)
    assert known["f1"] == pytest.approx(2 / 3) and known["confusion_matrix"] == [[1, 2], [0, 2]]
    assert (known["n"], known["n_real"], known["n_fake"]) == (5, 3, 2)
    rows = [{"condition": "clean", "level": "image", "source": s, "label": y, "score": p, "no_face": nf}
            for s, y, p, nf in [("a", 0, 0.1, False), ("a", 1, 0.8, True), ("b", 0, 0.6, False), ("b", 1, 0.4, False)]]
    by_source = summarise(rows, 0.5)["clean"]["image"]
    assert by_source["a"]["auc"] == 1.0 and by_source["b"]["auc"] == 0.0 and by_source["all"]["auc"] == 0.75
    assert by_source["a"]["no_face"] == 1 and by_source["all"]["accuracy"] == 0.5

    folder = tmp_path / "tiny"
    for i in range(4):
        _write(folder / "real" / f"r{i}.png", _textured(seed=i, size=96))
        img = _textured(seed=50 + i, size=96)
        img[30:70, 30:70] = 255 - img[30:70, 30:70]
        _write(folder / "fake" / f"f{i}.png", img)
    out = tmp_path / "report"
    fd = str(YUNET) if YUNET.is_file() else "haar"
    assert _run("evaluate", folder, "--model", BUNDLED_MODEL, "--out", out, "--face-detector", fd) == 0
    report = json.loads((out / "metrics.json").read_text())
    with open(out / "scores.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["condition"] == "clean"]
    y = [int(r["label"]) for r in rows]
    p = [float(r["score"]) for r in rows]
    t = report["threshold"]
    det = load_detector(BUNDLED_MODEL, face_detector=fd)
    assert t == det.threshold
    api = [det.analyze_image(r["path"], whole_image=True).fake_probability for r in rows]
    np.testing.assert_allclose(p, api, atol=1e-6)  # the scores are the inference path's
    assert len(set(np.round(p, 4))) == len(p)  # and differ from file to file
    m = report["metrics"]["clean"]["image"]["tiny"]
    assert m["n"] == 8 and m["no_face"] == 8  # textures: whole-image fallback, counted
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    fakes, reals = [s for s, lab in zip(p, y) if lab], [s for s, lab in zip(p, y) if not lab]
    ranked = sum((f > r) + 0.5 * (f == r) for f in fakes for r in reals) / (len(fakes) * len(reals))
    assert m["auc"] == pytest.approx(ranked)
    pred = [int(s >= t) for s in p]
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["accuracy"] == pytest.approx(np.mean([a == b for a, b in zip(pred, y)]))
    assert m["f1"] == pytest.approx(f1_score(y, pred, zero_division=0))
    assert set(report["metrics"]) == {"clean", "jpeg50", "half", "quarter"}
    assert (out / "roc.png").stat().st_size > 0 and (out / "reliability.png").stat().st_size > 0


# ------------------------------------------------------------------------------------ train
def _linked_folder(root: Path, src: Path, n: int) -> Path:
    """real/ and fake/ with symlinks to the first n files of each class of src (nothing copied)."""
    for cls in ("real", "fake"):
        (root / cls).mkdir(parents=True)
        for f in sorted((src / cls).iterdir())[:n]:
            (root / cls / f.name).symlink_to(f.resolve())
    return root


def test_train_command_saves_the_validated_weights(tmp_path, shared_data, yunet_onnx):
    """A tiny run of the real command: splits by group, steps follow the schedule, and the saved folder
    loads and holds exactly the (EMA) weights whose validation AUC the run logged."""
    import torch

    from deepfake.faces import CropRecipe, load_face_detector
    from deepfake.model import Network
    from deepfake.train.train import choose_threshold, per_source_auc, predict

    torch.set_num_threads(1)
    src = _linked_folder(tmp_path / "ciplab" / "train", shared_data / "images" / "ciplab" / "train", 10)
    held = _linked_folder(tmp_path / "ciplab" / "val", shared_data / "images" / "ciplab" / "val", 8)
    out, log, cache = tmp_path / "model", tmp_path / "log", tmp_path / "cache"
    assert _run("train", src, "--holdout", held, "--out", out, "--epochs", 2, "--samples-per-epoch", 32,
                "--threads", 1, "--cache", cache, "--log-dir", log, "--face-detector", yunet_onnx,
                "--max-fpr", 0.25) == 0

    summary = json.loads((log / "summary.json").read_text())
    assert [h["steps"] for h in summary["history"]] == [2, 4]  # 32 samples / batch 16, per epoch
    split = json.loads((log / "split.json").read_text())
    groups = {s: {row[3] for row in rows} for s, rows in split.items()}
    assert groups["train"] and groups["val"] and groups["test"]
    assert not groups["train"] & (groups["val"] | groups["test"]) and not groups["val"] & groups["test"]

    cfg = json.loads((out / "config.json").read_text())
    assert cfg["deepfake"]["threshold"] == pytest.approx(summary["threshold"], abs=1e-6)
    assert "at most 0.25" in cfg["deepfake"]["threshold_rule"]
    assert cfg["deepfake"]["training"]["best_epoch"] == summary["best_epoch"]
    assert (out / "README.md").is_file()

    # the saved weights reproduce the logged validation AUC of the best epoch
    val_items = [data.Item(Path(p), label, source, group, "image") for p, label, source, group in split["val"]]
    ds, _ = data.build_dataset(val_items, load_face_detector(str(yunet_onnx)), CropRecipe(1.3, 224), cache, log=None)
    net = Network.from_folder(out, backend="torch")
    assert cfg["deepfake"]["test_time_flip"] is False and not net.config.test_time_flip
    mean, std = cfg["pretrained_cfg"]["mean"], cfg["pretrained_cfg"]["std"]
    scores = predict(net.net, ds.crops, mean, std)
    assert per_source_auc(ds.labels, scores, ds.sources) == pytest.approx(summary["val_auc"], abs=1e-9)
    np.testing.assert_allclose(net.predict(ds.crops), scores, atol=1e-6)  # validation scores as inference does

    # `threshold` re-derives the run's own threshold from the same split and weights, and applies a new rule
    threshold_args = ("threshold", src, "--holdout", held, "--model", out, "--cache", cache, "--threads", 1,
                      "--face-detector", yunet_onnx)
    assert _run(*threshold_args, "--max-fpr", 0.25) == 0
    rethresholded = json.loads((out / "config.json").read_text())["deepfake"]["threshold"]
    assert rethresholded == pytest.approx(summary["threshold"], abs=1e-6)
    assert _run(*threshold_args, "--max-fpr", 0) == 0
    expected, _ = choose_threshold(ds.labels, scores, ds.sources, None)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["deepfake"]["threshold"] == pytest.approx(expected, abs=1e-6)
    assert "balanced accuracy" in cfg["deepfake"]["threshold_rule"]
    # switching test-time flip on re-chooses the threshold on two-view scores, which inference then uses
    assert _run(*threshold_args, "--max-fpr", 0, "--test-time-flip") == 0
    flipped = predict(net.net, ds.crops, mean, std, flip=True)
    assert np.abs(flipped - scores).max() > 1e-3
    expected, _ = choose_threshold(ds.labels, flipped, ds.sources, None)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["deepfake"]["threshold"] == pytest.approx(expected, abs=1e-6)
    assert cfg["deepfake"]["test_time_flip"] is True
    np.testing.assert_allclose(Network.from_folder(out, backend="torch").predict(ds.crops), flipped, atol=1e-6)

    # the same command again gives the same weights, bit for bit: the documented command retrains the model it made
    again, log_again = tmp_path / "model-again", tmp_path / "log-again"
    assert _run("train", src, "--holdout", held, "--out", again, "--epochs", 2, "--samples-per-epoch", 32,
                "--threads", 1, "--cache", cache, "--log-dir", log_again, "--face-detector", yunet_onnx,
                "--max-fpr", 0.25) == 0
    from safetensors.torch import load_file
    first, second = load_file(str(out / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)

    # --init-seed reseeds initialisation, sampling and augmentation only: same split, other weights
    # (this run also trains under bf16 autocast, which the config records; its saved weights stay float32)
    assert cfg["deepfake"]["training"]["init_seed"] == 0
    assert cfg["deepfake"]["training"]["precision"] == "float32"
    out2, log2 = tmp_path / "model2", tmp_path / "log2"
    assert _run("train", src, "--holdout", held, "--out", out2, "--epochs", 2, "--samples-per-epoch", 32,
                "--threads", 1, "--cache", cache, "--log-dir", log2, "--face-detector", yunet_onnx,
                "--init-seed", 5, "--bf16") == 0
    assert json.loads((log2 / "split.json").read_text()) == split
    cfg2 = json.loads((out2 / "config.json").read_text())["deepfake"]
    assert cfg2["training"]["init_seed"] == 5 and cfg2["split"]["seed"] == 0
    assert cfg2["training"]["precision"] == "bf16 autocast" and "precision: bf16 autocast" in (log2 / "train.log").read_text()
    assert {v.dtype for v in load_file(str(out2 / "model.safetensors")).values() if v.is_floating_point()} == {torch.float32}
    assert np.abs(Network.from_folder(out2, backend="torch").predict(ds.crops) - scores).max() > 1e-3

    # ciplab's fakes train, so ciplab/val is in-source; with self-blends only no fake trains and it is cross-source
    assert cfg2["split"]["fake_train_sources"] == ["ciplab"] and summary["val_cross_source"] == {}
    # (and --exclude leaves a listed training file out of training only)
    out3, log3, listing = tmp_path / "model3", tmp_path / "log3", tmp_path / "exclude.txt"
    left_out = sorted(row[0] for row in split["train"] if row[1] == 0)[0]
    listing.write_text("# one real training file\n" + "/".join(Path(left_out).parts[-3:]) + "\n")
    # retraining a detector folder's own network keeps the further networks its config lists
    further = [{"name": "generated", "kind": "generated", "path": "networks/generated", "repo": "o/n"}]
    out3.mkdir()
    (out3 / "config.json").write_text(json.dumps({"deepfake": {"threshold": 0.5, "networks": further}}))
    assert _run("train", src, "--holdout", held, "--out", out3, "--epochs", 1, "--samples-per-epoch", 16,
                "--threads", 1, "--cache", cache, "--log-dir", log3, "--face-detector", yunet_onnx,
                "--sbi-ratio", 1, "--exclude", listing) == 0
    summary3 = json.loads((log3 / "summary.json").read_text())
    assert set(summary3["val_cross_source"]) == {"ciplab"} and summary3["val_in_source"] == {}
    split3 = json.loads((out3 / "config.json").read_text())["deepfake"]["split"]
    assert split3["fake_train_sources"] == []
    assert json.loads((out3 / "config.json").read_text())["deepfake"]["networks"] == further
    assert split3["excluded"] == {"list": "exclude.txt", "lines": 1, "lines_matched": 1, "items": 1}
    rows3 = json.loads((log3 / "split.json").read_text())
    assert [r[0] for r in rows3["train"]] == [r[0] for r in split["train"] if r[0] != left_out]
    assert rows3["val"] == split["val"] and rows3["test"] == split["test"]


@needs_model
def test_model_card_numbers_are_reproduced_by_evaluate(tmp_path, shared_data, yunet_onnx):
    """The card's StyleGAN test row (clean, JPEG 50, half and quarter size) is what `evaluate` measures now."""
    row = next(line for line in (BUNDLED_MODEL / "README.md").read_text().splitlines()
               if line.startswith("| stylegan | image |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    out = tmp_path / "report"
    assert _run("evaluate", shared_data / "images" / "stylegan", "--subset", "test", "--model", BUNDLED_MODEL,
                "--out", out, "--face-detector", yunet_onnx) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    m = metrics["clean"]["image"]["stylegan"]
    cm = m["confusion_matrix"]
    measured = [f"{m['n_real']} / {m['n_fake']}", str(m["no_face"])] + [
        f"{m[k]:.3f}" for k in ("auc", "accuracy", "precision", "recall", "f1")] + [
        f"{cm[0][0]} {cm[0][1]} / {cm[1][0]} {cm[1][1]}",
        *(f"{metrics[c]['image']['stylegan']['auc']:.3f}" for c in ("jpeg50", "half", "quarter"))]
    assert cells[2:] == measured


def test_bf16_autocast_trains_in_bf16_and_keeps_float32_weights():
    """--bf16: the forward runs in bfloat16, the loss and the weights stay float32, and one training step
    (train_step, as `train` runs it) lands near the float32 step (bf16 keeps about 3 significant digits)."""
    import torch

    from deepfake.train.train import autocast, train_step

    def step(bf16: bool):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                  torch.nn.Flatten(), torch.nn.Linear(8, 2))
        x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 0, 1])
        with torch.no_grad(), autocast(bf16):
            dtype = net(x).dtype
        loss = train_step(net, torch.optim.AdamW(net.parameters(), lr=1e-2), x, y, bf16)
        return dtype, loss, net[-1].weight.detach()

    dtype16, loss16, w16 = step(True)
    dtype32, loss32, w32 = step(False)
    assert dtype16 == torch.bfloat16 and dtype32 == torch.float32
    assert loss16.dtype == torch.float32 and w16.dtype == torch.float32
    assert float(loss16) == pytest.approx(float(loss32), rel=2e-2) and float(loss16) != float(loss32)
    assert torch.allclose(w16, w32, atol=1e-3)


def test_threshold_rules_on_known_scores():
    from deepfake.train.train import choose_threshold

    # two sources; real faces score 0.1..0.4 (a) and 0.3..0.6 (b), fakes above
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 2)
    sources = np.array(["a"] * 8 + ["b"] * 8)
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.9, 0.95])
    t, at = choose_threshold(labels, scores, sources, max_fpr=0.125)  # one real in 8, averaged over sources
    assert t == pytest.approx(0.55) and at["fpr"] == pytest.approx(0.125) and at["tpr"] == pytest.approx(0.875)
    t, at = choose_threshold(labels, scores, sources, max_fpr=0.0)
    assert t == pytest.approx(0.625) and at["fpr"] == 0.0 and at["tpr"] == pytest.approx(0.75)
    t, at = choose_threshold(labels, scores, sources, None)  # best balanced accuracy; ties: the lowest
    assert t == pytest.approx(0.45) and at["balanced_accuracy"] == pytest.approx(0.875) and at["fpr"] == 0.25


@pytest.mark.parametrize("command", ["train", "evaluate", "threshold"])
def test_commands_refuse_a_bad_folder_in_one_line(command, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "other").mkdir(parents=True)
    extra = {"train": ("--out", tmp_path / "out"), "evaluate": ("--model", BUNDLED_MODEL),
             "threshold": ("--model", BUNDLED_MODEL)}[command]
    assert _run(command, empty, *extra, "--face-detector", "haar") == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {empty}: no images or videos under real/ or fake/"]
    missing = tmp_path / "missing"
    assert _run(command, missing, *extra, "--face-detector", "haar") == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {missing} is not a folder"]
    assert not (tmp_path / "out").exists()


def test_evaluate_tables_by_face_size_and_cross_source_on_known_rows():
    from deepfake.train.evaluate import by_face_size, cross_source_table, degrade, summarise

    rows = []
    # source a (seen): small faces separate perfectly, large faces inverted; source v (held out): videos
    for px, real, fake in ((50, 0.2, 0.8), (60, 0.3, 0.9), (200, 0.9, 0.1), (300, 0.8, 0.3)):
        for label, score in ((0, real), (1, fake)):
            rows.append({"source": "a", "level": "image", "condition": "clean", "label": label, "score": score,
                         "no_face": False, "face_px": px})
    for label, score in ((0, 0.4), (1, 0.6), (1, 0.3)):
        rows.append({"source": "v", "level": "video", "condition": "clean", "label": label, "score": score,
                     "no_face": False, "face_px": 120.0})
    sizes = by_face_size(rows)
    assert sizes["image"]["a"]["<80"] == {"n": 4, "auc": 1.0}
    assert sizes["image"]["a"][">160"] == {"n": 4, "auc": 0.0}
    assert sizes["image"]["a"]["80-160"] == {"n": 0, "auc": None}
    assert "frame" not in sizes  # no frame rows: no empty table
    cross = cross_source_table(summarise(rows, 0.5), {"v"})
    assert cross["cross_source"] == {"v": 0.5}  # video level: real 0.4 vs fakes 0.6 and 0.3
    assert cross["in_source"] == {"a": 15 / 32}  # image level: 7.5 of the 16 (real, fake) pairs ranked right
    assert cross["cross_source_mean"] == 0.5 and cross["in_source_mean"] == 15 / 32
    img = np.zeros((100, 60, 3), np.uint8)
    assert degrade(img, "quarter").shape == (25, 15, 3) and degrade(img, "half").shape == (50, 30, 3)


def test_evaluate_band_shares_count_each_class_per_label_and_gates():
    from deepfake.train.evaluate import band_shares, band_table

    def row(source, label, verdict, gated=False, level="image", condition="clean"):
        return {"source": source, "level": level, "condition": condition, "label": label, "verdict": verdict,
                "gated": gated, "score": 0.5}

    rows = [row("a", 0, "REAL"), row("a", 0, "UNCERTAIN", gated=True), row("a", 0, "FAKE"), row("a", 0, "REAL"),
            row("a", 1, "FAKE"), row("a", 1, "UNCERTAIN"), row("b", 1, "REAL"),
            row("a", 0, "FAKE", condition="half"), row("v", 0, "REAL", level="frame")]  # neither is counted
    shares = band_shares(rows)
    assert set(shares) == {"image"} and set(shares["image"]) == {"a", "b", "all"}
    a = shares["image"]["a"]
    assert (a["n_real"], a["n_fake"]) == (4, 2)
    assert a["real"] == {"FAKE": 0.25, "UNCERTAIN": 0.25, "REAL": 0.5, "gated": 0.25}
    assert a["fake"] == {"FAKE": 0.5, "UNCERTAIN": 0.5, "REAL": 0.0, "gated": 0.0}
    assert shares["image"]["b"]["real"] is None and shares["image"]["all"]["fake"]["REAL"] == 1 / 3
    assert "image  a            real    4: 0.250 / 0.250 (0.250) / 0.500" in band_table(shares)


def test_trained_sources_come_from_the_split_or_the_data_summary():
    from deepfake.train.evaluate import trained_sources

    assert trained_sources({"deepfake": {"split": {"train_sources": ["a", "b"]}, "data": "x: 1 real / 2 fake items"}}) == {"a", "b"}
    data_text = ("ciplab: 634 real / 590 fake items; dfdc_faces: 2250 real / 2250 fake items; plus self-blended "
                 "fakes (sbi_ratio 0.6)")
    assert trained_sources({"deepfake": {"data": data_text}}) == {"ciplab", "dfdc_faces"}
    assert trained_sources({"deepfake": {}}) is None
    # self-blends only: sources trained, none of their fakes; every source is cross-source
    assert trained_sources({"deepfake": {"split": {"train_sources": ["a"], "fake_train_sources": []}}}) == set()


def test_lr_schedule_warms_up_then_follows_a_cosine_over_steps():
    import torch

    from deepfake.train.train import lr_scheduler

    optim = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = lr_scheduler(optim, 1000)  # warm-up of 100 steps
    lrs = []
    for step in range(1000):
        sched.step_update(step)
        lrs.append(optim.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-5)  # lr / warm-up steps
    assert lrs[50] == pytest.approx(1e-5 + 50 * (1e-3 - 1e-5) / 100)
    assert lrs[100] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 0.1)))
    assert lrs[500] == pytest.approx(0.5e-3) and lrs[-1] < 1e-7
    assert all(a >= b for a, b in zip(lrs[100:], lrs[101:]))


def test_learning_curve_is_recorded_per_epoch():
    from deepfake.train.train import learning_curve_of

    hist = [{"steps": 10, "val_in_source_mean": 0.61234, "val_cross_source_mean": float("nan")},
            {"steps": 20, "val_in_source_mean": 0.7, "val_cross_source_mean": 0.655555}]
    assert learning_curve_of(hist) == [{"steps": 10, "in_source": 0.6123, "cross_source": None},
                                       {"steps": 20, "in_source": 0.7, "cross_source": 0.6556}]
