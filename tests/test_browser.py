"""The web extension in a real browser (headless Chromium driven by Playwright): the 4D viewer draws
a real scene file, plays and scrubs; the camera-path editor's JSON round-trips through the
keyframe parser of the Keyframes node."""

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from more4d_core.camera import camera_preset, parse_keyframes
from more4d_core.data.analytic import make_analytic_scene
from more4d_core.export.gltf import export_glb

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")

ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
        "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "web").symlink_to(REPO / "web")
    (root / "tests").mkdir()
    (root / "tests" / "browser").symlink_to(REPO / "tests" / "browser")
    scene = make_analytic_scene(48, 64, 9)
    path = camera_preset("orbit", 9, scene_depth=scene.median_depth())
    export_glb(scene, root, "scene", camera_path=path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def page(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_page()
        tab.goto(f"{server}/tests/browser/viewer_page.html?glb=/scene.glb")
        tab.wait_for_function("document.getElementById('status').textContent !== 'loading'", timeout=20000)
        assert tab.inner_text("#status") == "ready", tab.inner_text("#status")
        yield tab
        browser.close()


def _drawn_fraction(page) -> float:
    return page.evaluate("""() => {
        const c = document.querySelector('.more4d-viewer canvas');
        const gl = c.getContext('webgl');
        const px = new Uint8Array(c.width * c.height * 4);
        gl.readPixels(0, 0, c.width, c.height, gl.RGBA, gl.UNSIGNED_BYTE, px);
        let drawn = 0;
        for (let i = 0; i < px.length; i += 4) {
            if (Math.abs(px[i] - 20) + Math.abs(px[i + 1] - 23) + Math.abs(px[i + 2] - 31) > 30) drawn++;
        }
        return drawn / (c.width * c.height);
    }""")


def test_viewer_draws_plays_and_scrubs(page):
    assert page.evaluate("window.more4d.frames") == 9 and page.evaluate("window.more4d.hasPath")
    assert page.evaluate("window.more4d.points") == 48 * 64
    assert _drawn_fraction(page) > 0.2  # the point cloud covers the canvas, not a blank background
    page.evaluate("window.more4d.element.viewer.setFrame(5)")
    assert page.evaluate("window.more4d.element.viewer.frame") == 5
    assert page.inner_text(".more4d-viewer span") == "6/9"
    page.click(".more4d-viewer button")  # play
    page.wait_for_function("window.more4d.element.viewer.frame !== 5", timeout=5000)
    page.click(".more4d-viewer button")  # pause
    before = _drawn_fraction(page)
    page.mouse.move(100, 100)
    page.mouse.down()
    page.mouse.move(220, 140)
    page.mouse.up()
    assert page.evaluate("window.more4d.element.viewer.yaw") != 0 and _drawn_fraction(page) > 0 and before > 0


def test_camera_editor_json_round_trips(page):
    text = page.evaluate("window.more4d.editor.toJSON()")
    path = parse_keyframes(text, scene_depth=2.0)
    assert path.num_frames == 25
    page.fill("input[data-field='position'][data-row='1']", "0.5 0 0.25")
    page.dispatch_event("input[data-field='position'][data-row='1']", "change")
    edited = json.loads(page.evaluate("window.more4d.editor.toJSON()"))
    assert edited["keyframes"][1]["position"] == [0.5, 0, 0.25]
    moved = parse_keyframes(edited, scene_depth=2.0)
    assert moved.positions()[-1].tolist() == pytest.approx([1.0, 0.0, 0.5])
    back = page.evaluate("(t) => JSON.stringify(window.more4d.parsePath(t))", json.dumps(edited))
    assert json.loads(back) == edited
