"""The app in headless Chromium (Debian's chromium through Playwright): each tab runs an example end to
end, light and dark themes render, and the page fetches nothing from outside this machine."""
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from app_support import EXAMPLE_FAKE, EXAMPLE_REAL, EXAMPLE_VIDEO, pick_detector, running_app

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                                 reason="Debian chromium is not installed (apt install chromium)")]
VERDICT = re.compile(r"(FAKE|REAL|UNCERTAIN): fake probability \d\.\d{3}|No face detected")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def detector(random_model_dir):
    return pick_detector(random_model_dir)


@pytest.fixture(scope="module")
def server(detector):
    with running_app(*detector) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(browser, server):
    """A fresh page on the app; fails the test if it requested anything outside localhost."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = ctx.new_page()
    requests = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.goto(server, wait_until="load")
    pg.wait_for_selector("#image-run", timeout=30_000)
    yield pg
    ctx.close()
    outside = [u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
               and urlparse(u).hostname not in LOCAL_HOSTS]
    assert not outside, f"the page requested outside localhost: {outside[:5]}"


def upload(pg, elem_id: str, path: Path):
    pg.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))


def wait_image(pg, elem_id: str):
    pg.wait_for_selector(f"#{elem_id} img", state="visible", timeout=120_000)
    assert pg.locator(f"#{elem_id} img").first.evaluate("img => img.naturalWidth") > 50


def verdict_text(pg, elem_id: str) -> str:
    loc = pg.locator(f"#{elem_id}")
    pg.wait_for_function("id => VERDICT.test(document.getElementById(id).innerText)".replace(
        "VERDICT", "/(FAKE|REAL|UNCERTAIN): fake probability|No face detected/"), arg=elem_id, timeout=120_000)
    return loc.inner_text()


def test_image_tab(page, shots, detector):
    upload(page, "image-input", EXAMPLE_FAKE)
    page.wait_for_selector("#image-input img", timeout=30_000)
    page.click("#image-run")
    text = verdict_text(page, "image-verdict")
    want = detector[0].analyze_image(EXAMPLE_FAKE)
    assert VERDICT.search(text)
    if want.label != "NO_FACE":
        assert f"{want.label}: fake probability {want.fake_probability:.3f}" in text
    wait_image(page, "image-faces")
    wait_image(page, "image-cam")
    page.screenshot(path=str(shots / "image.png"), full_page=True)


def _exact(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")  # configs store 6 decimals


def test_the_band_is_the_exact_default_in_both_sliders_and_the_verdict(page, detector):
    """The range inputs keep the model's band (0.558603 for both bounds of the bundled model, which has one
    cut): the sliders' steps do not snap them, and the verdict states the values applied."""
    band = detector[0].band
    fake, real = _exact(band.fake_from), _exact(band.real_below)
    assert fake == _exact(detector[0].threshold)
    for elem_id, want in (("threshold", fake), ("real_below", real)):
        assert page.locator(f"#{elem_id} input[type=range]").input_value() == want, elem_id
        assert page.locator(f"#{elem_id} input[type=number]").input_value() == want, elem_id
        assert float(page.locator(f"#{elem_id} input[type=range]").input_value()) == \
            (band.fake_from if elem_id == "threshold" else band.real_below)
    upload(page, "image-input", EXAMPLE_REAL)
    page.wait_for_selector("#image-input img", timeout=30_000)
    page.click("#image-run")
    # The bundled detector has two networks: the sliders set the first one's band.
    assert f"Band of the face_swap network (the sliders): REAL below {real}, UNCERTAIN from {real} to {fake}, " \
           f"FAKE from {fake}" in verdict_text(page, "image-verdict")


def set_bounds(pg, threshold: float, real_below: float):
    for elem_id, value in (("threshold", threshold), ("real_below", real_below)):
        pg.locator(f"#{elem_id} input[type=number]").fill(str(value))
        pg.locator(f"#{elem_id} input[type=number]").press("Enter")


def test_an_uncertain_verdict_is_amber_and_says_why(page, detector):
    p = detector[0].analyze_image(EXAMPLE_REAL).fake_probability
    threshold, real_below = round(p + 0.05, 3), round(p - 0.05, 3)
    set_bounds(page, threshold, real_below)
    upload(page, "image-input", EXAMPLE_REAL)
    page.wait_for_selector("#image-input img", timeout=30_000)
    page.click("#image-run")
    text = verdict_text(page, "image-verdict")
    assert f"UNCERTAIN: fake probability {p:.3f}" in text
    assert f"REAL below {real_below:g}, UNCERTAIN {real_below:g}-{threshold:g}" in text  # the face_swap bar
    assert ("No network says FAKE, and not all say REAL: the fake probability of face_swap (face swap) is between "
            "its REAL bound and its FAKE threshold") in text
    heading = "getComputedStyle(document.querySelector('#image-verdict h2')).color"
    assert page.evaluate(heading) == "rgb(217, 119, 6)"


def test_a_real_bound_above_the_threshold_shows_the_detectors_message(page):
    set_bounds(page, 0.3, 0.4)
    upload(page, "image-input", EXAMPLE_REAL)
    page.wait_for_selector("#image-input img", timeout=30_000)
    page.click("#image-run")
    toast = page.get_by_text("The REAL bound (0.4) must not be above the FAKE threshold (0.3).")
    toast.first.wait_for(timeout=60_000)
    assert "fake probability" not in page.locator("#image-verdict").inner_text()


def test_a_client_with_the_old_positional_arguments_still_works(server, detector):
    """Clients made before the REAL bound existed send (image, threshold): the REAL bound is the model's,
    lowered to a lower threshold, as the package does with a threshold alone."""
    from gradio_client import Client, handle_file

    det = detector[0]
    client = Client(server, verbose=False)
    # One threshold below the model's REAL bound (which then follows it down), one above (the bound stays).
    low, high = round(det.band.real_below / 2, 3), round((det.band.real_below + 1) / 2, 3)
    assert 0 < low < det.band.real_below < high < 1
    for threshold, real_below in ((low, low), (high, det.band.real_below)):
        want = det.analyze_image(EXAMPLE_REAL, threshold=threshold)
        verdict, _, result, _, _ = client.predict(handle_file(str(EXAMPLE_REAL)), threshold, api_name="/predict_image")
        assert (result["label"], result["threshold"]) == (want.label, threshold)
        assert result["real_below"] == real_below == want.real_below
        assert result["label"] == det.band_for(threshold).label(want.fake_probability)
        assert result["fake_probability"] == round(want.fake_probability, 6)
    _, _, cam, _, _ = client.predict(handle_file(str(EXAMPLE_REAL)), "gradcam", low, api_name="/explain_image")
    assert cam["result"]["real_below"] == low and cam["result"]["label"] == det.analyze_image(
        EXAMPLE_REAL, threshold=low).label
    occ = client.predict(handle_file(str(EXAMPLE_REAL)), 2, "mean", low, api_name="/grid_heatmap")[2]
    assert occ["result"]["threshold"] == occ["result"]["real_below"] == low


def test_an_iphone_heic_photo_picked_as_a_file_gets_a_verdict(page, detector, tmp_path):
    from PIL import Image

    from deepfake import media  # noqa: F401  (registers pillow-heif with Pillow, for the save below)
    photo = tmp_path / "IMG_0001.HEIC"
    Image.open(EXAMPLE_FAKE).convert("RGB").save(photo, "HEIF", quality=90)
    with page.expect_file_chooser() as chooser:
        page.click("#image-file")
    chooser.value.set_files(str(photo))
    page.wait_for_function("() => document.querySelector('#image-input img') !== null", timeout=30_000)
    page.click("#image-run")
    text = verdict_text(page, "image-verdict")
    want = detector[0].analyze_image(photo)
    assert want.label != "NO_FACE" and f"{want.label}: fake probability {want.fake_probability:.3f}" in text
    wait_image(page, "image-faces")


def test_video_tab(page, shots):
    page.get_by_role("tab", name="Video").click()
    upload(page, "video-input", EXAMPLE_VIDEO)
    page.wait_for_selector("#video-preview video", timeout=60_000)  # H.264 preview made by ffmpeg
    page.click("#video-run")
    assert VERDICT.search(verdict_text(page, "video-verdict"))
    wait_image(page, "video-timeline")
    wait_image(page, "video-importance")
    assert page.locator("#video-gallery img").count() >= 8
    page.screenshot(path=str(shots / "video.png"), full_page=True)
    # a sampled frame goes to the Grid heatmap tab
    page.locator("#video-gallery img").nth(2).click()
    page.get_by_role("button", name="Grid heatmap of the selected frame").click()
    page.wait_for_selector("#grid-input img", state="visible", timeout=30_000)
    assert page.get_by_role("tab", name="Grid heatmap").get_attribute("aria-selected") == "true"


def test_grid_tab(page, shots):
    page.get_by_role("tab", name="Grid heatmap").click()
    upload(page, "grid-input", EXAMPLE_REAL)
    page.wait_for_selector("#grid-input img", timeout=30_000)
    page.get_by_role("button", name="4 x 4").click()
    page.click("#grid-run")
    assert VERDICT.search(verdict_text(page, "grid-verdict"))
    wait_image(page, "grid-heatmap")
    page.screenshot(path=str(shots / "grid.png"), full_page=True)


def test_model_tab_and_dark_theme(browser, server, shots, detector):
    det = detector[0]
    for theme in ("light", "dark"):
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = ctx.new_page()
        requests = []
        pg.on("request", lambda r: requests.append(r.url))
        pg.goto(server + ("?__theme=dark" if theme == "dark" else "?__theme=light"), wait_until="load")
        pg.get_by_role("tab", name="Model").click()
        card = pg.locator("#model-card")
        card.wait_for(timeout=30_000)
        text = card.inner_text()
        assert det.model_id in text and det.face_detector.name in text and "Limitations" in text
        assert "Decision band" in text and "Quality gates" in text and "Validation faces per band" in text
        bg = pg.evaluate("getComputedStyle(document.querySelector('gradio-app') || document.body).backgroundColor")
        rgb = [int(v) for v in re.findall(r"\d+", bg)[:3]]
        assert (sum(rgb) / 3 < 100) if theme == "dark" else (sum(rgb) / 3 > 180), (theme, bg)
        # the body text contrasts with the background in both themes
        fg = pg.evaluate("getComputedStyle(document.querySelector('#model-card')).color")
        fg_rgb = [int(v) for v in re.findall(r"\d+", fg)[:3]]
        assert abs(sum(fg_rgb) - sum(rgb)) / 3 > 100, (theme, fg, bg)
        pg.screenshot(path=str(shots / f"model-{theme}.png"), full_page=True)
        ctx.close()
        assert all(urlparse(u).hostname in LOCAL_HOSTS for u in requests
                   if urlparse(u).scheme in ("http", "https", "ws", "wss")), requests
