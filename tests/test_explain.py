"""Explanations must point at what drives the score: a toy model that only looks at one region."""
import numpy as np
import pytest
import torch

from deepfake import explain
from toy import SIZE, textured, toy_network

REGIONS = [(0, 16, 48, 64), (40, 56, 8, 24)]  # (y0, y1, x0, x1): top right, bottom left


def _in_region(cell_row, cell_col, grid, region):
    """Does the cell overlap the region?"""
    y0, y1, x0, x1 = region
    step = SIZE / grid
    return cell_row * step < y1 and (cell_row + 1) * step > y0 and cell_col * step < x1 and (cell_col + 1) * step > x0


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("grid", [4, 8, 16])
def test_occlusion_peaks_in_the_region_that_drives_the_score(region, grid):
    net = toy_network(region)
    x = net.preprocess([textured(region=(0, SIZE, 0, SIZE))])  # texture everywhere: only the region counts
    p0, changes = explain.occlusion_changes(net.probabilities, x, grid)
    assert changes.shape == (grid, grid)
    assert p0 == pytest.approx(float(net.probabilities(x)[0]))
    r, c = np.unravel_index(np.argmax(changes), changes.shape)
    assert _in_region(r, c, grid, region)
    inside = np.array([[_in_region(i, j, grid, region) for j in range(grid)] for i in range(grid)])
    # Hiding texture in the region lowers the fake probability; elsewhere it changes (almost) nothing.
    assert changes[inside].min() > 0.01
    assert np.abs(changes[~inside]).max() < 0.2 * changes[inside].max()


def test_occlusion_matches_one_forward_per_cell():
    """The batched map equals the naive method of the seed (a forward pass per occluded cell)."""
    region, grid = REGIONS[1], 4
    net = toy_network(region)
    x = net.preprocess([textured(region=(0, SIZE, 0, SIZE), seed=3)])
    for baseline in explain.OCCLUSION_BASELINES:
        p0, changes = explain.occlusion_changes(net.probabilities, x, grid, baseline, batch_size=5)
        base = explain.baseline_image(x, baseline)
        step = SIZE // grid
        for i in range(grid):
            for j in range(grid):
                occ = x.clone()
                occ[:, :, i * step:(i + 1) * step, j * step:(j + 1) * step] = \
                    base[:, :, i * step:(i + 1) * step, j * step:(j + 1) * step]
                assert changes[i, j] == pytest.approx(p0 - float(net.probabilities(occ)[0]), abs=1e-6)


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"])
def test_cam_peaks_in_the_region_that_drives_the_score(region, method):
    net = toy_network(region)
    x = net.preprocess([textured(region=(0, SIZE, 0, SIZE))])
    layer = explain.get_module(net.net, "mix")
    maps = explain.cam_maps(net.net, layer, x, fake_index=1, method=method)
    assert maps.shape == (1, SIZE, SIZE)
    y, xx = np.unravel_index(np.argmax(maps[0]), maps[0].shape)
    y0, y1, x0, x1 = region
    assert y0 - 2 <= y < y1 + 2 and x0 - 2 <= xx < x1 + 2
    mass_inside = maps[0][y0:y1, x0:x1].sum() / maps[0].sum()
    assert mass_inside > 0.8


def _mirror(region):
    y0, y1, x0, x1 = region
    return (y0, y1, SIZE - x1, SIZE - x0)


def test_test_time_flip_scores_the_mean_of_the_crop_and_its_mirror_image():
    region = REGIONS[0]
    plain, flipped = toy_network(region), toy_network(region, flip=True)
    x = plain.preprocess([textured(region=region), textured(region=REGIONS[1], seed=1), textured(seed=2)])
    p_crop, p_mirror = plain.probabilities(x), plain.probabilities(x.flip(-1))
    assert p_crop[0] - p_mirror[0] > 0.3  # the texture sits in the scored region only in the crop itself
    np.testing.assert_allclose(flipped.probabilities(x, batch_size=2), (p_crop + p_mirror) / 2, atol=1e-6)
    np.testing.assert_allclose(flipped.probabilities(x.flip(-1)), flipped.probabilities(x), atol=1e-6)


def test_cam_with_test_time_flip_explains_both_views():
    """The explained score is the mean over crop and mirror image, so the map covers the scored region and
    its mirror (where the mirror view looks), and mirroring the input mirrors the map."""
    region = REGIONS[0]
    net = toy_network(region, flip=True)
    layer = explain.get_module(net.net, "mix")
    img = textured(region=(0, SIZE, 0, SIZE))
    x = net.preprocess([img])
    maps = explain.cam_maps(net.net, layer, x, fake_index=1, flip=True)
    mirrored = explain.cam_maps(net.net, layer, x.flip(-1), fake_index=1, flip=True)
    np.testing.assert_allclose(mirrored[0], maps[0][:, ::-1], atol=1e-5)
    masses = []
    for y0, y1, x0, x1 in (region, _mirror(region)):
        masses.append(maps[0][y0:y1, x0:x1].sum() / maps[0].sum())
    assert min(masses) > 0.3 and sum(masses) > 0.8


def test_cam_explains_the_fake_output_and_releases_hooks():
    net = toy_network(REGIONS[0])
    layer = explain.get_module(net.net, "mix")
    x = net.preprocess([textured(region=(0, SIZE, 0, SIZE))])
    with torch.inference_mode():  # callers may be inside inference mode: CAM must still work
        explain.cam_maps(net.net, layer, x, 1)
    assert not layer._forward_hooks and not layer._backward_hooks and not layer._forward_pre_hooks
    assert not any(m._forward_hooks for m in net.net.modules())


def test_bad_explanation_arguments():
    net = toy_network()
    x = net.preprocess([textured()])
    with pytest.raises(ValueError, match="Grid size"):
        explain.occlusion_changes(net.probabilities, x, 1)
    with pytest.raises(ValueError, match="Grid size"):
        explain.occlusion_changes(net.probabilities, x, 33)
    with pytest.raises(ValueError, match="baseline"):
        explain.occlusion_changes(net.probabilities, x, 4, "noise")
    with pytest.raises(ValueError, match="Unknown CAM method"):
        explain.cam_maps(net.net, net.net.mix, x, 1, "magic")


def test_paste_maps_places_each_map_at_its_crop_box():
    m = np.zeros((8, 8), np.float32)
    m[2, 6] = 1.0
    canvas = explain.paste_maps([m], [(10, 20, 26, 36)], (50, 60))
    y, x = np.unravel_index(np.argmax(canvas), canvas.shape)
    assert 20 <= y < 36 and 10 <= x < 26
    assert canvas[:20].max() == 0 and canvas[:, :10].max() == 0
