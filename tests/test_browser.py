"""The web extension in a real browser (headless Chromium driven by Playwright): the 4D viewer draws
a real scene file, plays and scrubs; the camera-path editor's JSON round-trips through the
keyframe parser of the Keyframes node."""

import functools
import http.server
import json
import math
import shutil
import threading
from pathlib import Path

import pytest

from more4d_core.camera import camera_preset, parse_keyframes
from more4d_core.camera.keyframes import KEYFRAMES_EXAMPLE_FILE
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
def scene_and_path():
    scene = make_analytic_scene(48, 64, 9)
    return scene, camera_preset("orbit", 9, scene_depth=scene.median_depth())


@pytest.fixture(scope="module")
def server(tmp_path_factory, scene_and_path):
    root = tmp_path_factory.mktemp("site")
    (root / "web").symlink_to(REPO / "web")
    (root / "tests").mkdir()
    (root / "tests" / "browser").symlink_to(REPO / "tests" / "browser")
    scene, path = scene_and_path
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


# --- camera-path editor: every edit must give JSON the Keyframes node parses, to the path the user meant ---

EXAMPLE = json.loads(KEYFRAMES_EXAMPLE_FILE.read_text())


def _kf(key, value, position, look_at=(0, 0, 1), **extra):
    return {key: value, "position": list(position), "look_at": list(look_at), **extra}


def _doc(keyframes, **extra):
    return {"format": "more4d.camera_keyframes", "version": 1, "units": "scene_depth", "interpolation": "spline",
            **extra, "keyframes": keyframes}


def _same_path(got, want, depth=1.5):
    a, b = parse_keyframes(got, scene_depth=depth), parse_keyframes(want, scene_depth=depth)
    assert a.num_frames == b.num_frames
    assert a.poses.numpy() == pytest.approx(b.poses.numpy(), abs=1e-6)
    assert (a.zoom is None) == (b.zoom is None)
    if a.zoom is not None:
        assert a.zoom.numpy() == pytest.approx(b.zoom.numpy(), abs=1e-6)


def _load(page, doc, node_frames=0):
    page.evaluate("([d, n]) => { window.more4d.nodeFrames = n; window.more4d.editor.setData(d); }", [doc, node_frames])


def _doc_now(page):
    return json.loads(page.evaluate("window.more4d.editor.toJSON()"))


def _type(page, field, row, value):
    sel = f"#editor input[data-field='{field}'][data-row='{row}']"
    page.fill(sel, str(value))
    page.dispatch_event(sel, "change")
    return _doc_now(page)


def _click(page, action, row=None):
    sel = f"#editor button[data-action='{action}']" + ("" if row is None else f"[data-row='{row}']")
    page.click(sel)
    return _doc_now(page)


def _error(page):
    return page.inner_text("#editor .more4d-editor-error")


def test_editor_table_shows_frame_and_time_of_the_default_json(page):
    _load(page, EXAMPLE)
    cells = page.evaluate("""() => [0, 1, 2].map((r) => ['frame', 'time'].map((f) => {
        const i = document.querySelector(`#editor input[data-field='${f}'][data-row='${r}']`);
        return [i.value, i.placeholder];
    }))""")
    # the JSON gives times: time is the value, frame the derived placeholder (time * 48, 49 frames)
    assert cells == [[["", "0"], ["0", ""]], [["", "24"], ["0.5", ""]], [["", "48"], ["1", ""]]]
    _load(page, EXAMPLE, node_frames=25)  # the node's frames widget: frame placeholders follow it
    assert page.get_attribute("#editor input[data-field='frame'][data-row='1']", "placeholder") == "12"
    # the frames box: empty (num_frames not set), not 49
    assert page.input_value("#editor input[data-field='num_frames']") == ""
    assert page.get_attribute("#editor input[data-field='num_frames']", "placeholder") == "scene"
    assert _doc_now(page) == EXAMPLE  # loading alone changes nothing


def test_editor_edit_time_and_frame(page):
    _load(page, EXAMPLE)
    edited = _type(page, "time", 1, 0.25)
    assert edited["keyframes"][1] == {**EXAMPLE["keyframes"][1], "time": 0.25}
    want = _doc([_kf("time", 0, (0, 0, 0)), _kf("time", 0.25, (0.15, -0.05, 0.1)), _kf("time", 1, (0.3, 0, 0.15), zoom=1.1)])
    _same_path(edited, want)
    # frame 36 of the 49 the editor shows = time 0.75; the frame key replaces the time key
    edited = _type(page, "frame", 1, 36)
    assert "time" not in edited["keyframes"][1] and edited["keyframes"][1]["frame"] == 36
    _same_path(edited, {**want, "keyframes": [want["keyframes"][0], {**want["keyframes"][1], "time": 0.75}, want["keyframes"][2]]})
    assert page.get_attribute("#editor input[data-field='time'][data-row='1']", "placeholder") == "0.75"
    # back to time: the frame key goes
    edited = _type(page, "time", 1, 0.5)
    assert "frame" not in edited["keyframes"][1]
    _same_path(edited, EXAMPLE)
    # a frame on another keyframe's frame is refused, the JSON kept, the reason shown
    before = _doc_now(page)
    assert _type(page, "frame", 0, 48) == before and "same frame" in _error(page)
    assert _type(page, "time", 0, 1.5) == before and "0 to 1" in _error(page)


def test_editor_frame_edit_keeps_its_meaning_when_the_file_mixes_frames_and_times(page):
    # a frame on the last keyframe makes the parser's frame axis "last frame + 1" unless num_frames pins it
    _load(page, EXAMPLE)
    edited = _type(page, "frame", 2, 40)  # 40 of 49 -> time 40/48
    _same_path(edited, _doc([_kf("time", 0, (0, 0, 0)), _kf("time", 0.5, (0.15, -0.05, 0.1)),
                             _kf("time", 40 / 48, (0.3, 0, 0.15), zoom=1.1)]))


def test_editor_adds_keyframes_in_the_largest_gaps(page):
    _load(page, EXAMPLE)
    docs = [_click(page, "add") for _ in range(3)]
    for d in docs:
        parse_keyframes(d)  # each step is a valid document
    want = _doc([
        _kf("time", 0, (0, 0, 0)),
        _kf("time", 0.125, (0.0375, -0.0125, 0.025)),
        _kf("time", 0.25, (0.075, -0.025, 0.05)),
        _kf("time", 0.5, (0.15, -0.05, 0.1)),
        _kf("time", 0.75, (0.225, -0.025, 0.125), zoom=1.05),
        _kf("time", 1, (0.3, 0, 0.15), zoom=1.1),
    ])
    assert [k["time"] for k in docs[-1]["keyframes"]] == [0, 0.125, 0.25, 0.5, 0.75, 1]
    _same_path(docs[-1], want)
    # frame keys: a new frame key halfway between frames, in the gap with room
    _load(page, _doc([_kf("frame", 0, (0, 0, 0)), _kf("frame", 1, (0, 0, 0.1)), _kf("frame", 9, (0.4, 0, 0.1))]))
    added = _click(page, "add")
    _same_path(added, _doc([_kf("frame", 0, (0, 0, 0)), _kf("frame", 1, (0, 0, 0.1)),
                            _kf("frame", 5, (0.2, 0, 0.1)), _kf("frame", 9, (0.4, 0, 0.1))]))
    _load(page, _doc([_kf("frame", 0, (0, 0, 0)), _kf("frame", 1, (0, 0, 0.1))]))
    assert _click(page, "add") == _doc_now(page) and "no free frame" in _error(page)


def test_editor_remove_and_move(page):
    _load(page, EXAMPLE)
    moved = _click(page, "up", 2)  # the last pose moves to time 0.5, the middle one to time 1
    _same_path(moved, _doc([_kf("time", 0, (0, 0, 0)), _kf("time", 0.5, (0.3, 0, 0.15), zoom=1.1),
                            _kf("time", 1, (0.15, -0.05, 0.1))]))
    _same_path(_click(page, "down", 1), EXAMPLE)
    assert page.is_disabled("#editor button[data-action='up'][data-row='0']")
    removed = _click(page, "remove", 1)
    _same_path(removed, _doc([_kf("time", 0, (0, 0, 0)), _kf("time", 1, (0.3, 0, 0.15), zoom=1.1)]))
    removed = _click(page, "remove", 1)
    parse_keyframes(removed)
    assert len(removed["keyframes"]) == 1
    assert page.is_disabled("#editor button[data-action='remove'][data-row='0']")  # the parser needs one
    # removing the last frame key of a file mixing frames and times keeps the other frame keys in place
    _load(page, _doc([_kf("frame", 12, (0.1, 0, 0)), _kf("time", 0.75, (0.2, 0, 0)), _kf("frame", 48, (0.3, 0, 0))]))
    removed = _click(page, "remove", 2)
    _same_path(removed, _doc([_kf("time", 0.25, (0.1, 0, 0)), _kf("time", 0.75, (0.2, 0, 0))]))


def test_editor_frames_box(page):
    _load(page, _doc([_kf("frame", 0, (0, 0, 0)), _kf("frame", 24, (0.2, 0, 0))], num_frames=97))
    assert page.input_value("#editor input[data-field='num_frames']") == "97"
    page.fill("#editor input[data-field='num_frames']", "")
    page.dispatch_event("#editor input[data-field='num_frames']", "change")
    cleared = _doc_now(page)
    assert "num_frames" not in cleared
    assert parse_keyframes(cleared).num_frames == 25  # the parser's own count: last frame + 1
    page.fill("#editor input[data-field='num_frames']", "10")
    page.dispatch_event("#editor input[data-field='num_frames']", "change")
    assert "num_frames" not in _doc_now(page) and "only 10 frames" in _error(page)


# --- the 4D viewer: the view as a keyframe, and looking through the path's camera ---

def test_viewer_add_keyframe_here_gives_the_opencv_view(page, scene_and_path):
    scene, path = scene_and_path
    depth = scene.median_depth()
    page.evaluate("window.more4d.element.viewer.setLookThrough(false)")
    page.evaluate("""() => { const v = window.more4d.element.viewer;
        v.target = [0.1, -0.2, -2.0]; v.yaw = Math.PI / 2; v.pitch = Math.PI / 6; v.distance = 2; v.setFrame(4); }""")
    # eye = target + distance * (-cos(pitch) sin(yaw), sin(pitch), cos(pitch) cos(yaw)) in glTF axes
    eye_gl = [0.1 - 2 * math.cos(math.pi / 6), -0.2 + 2 * 0.5, -2.0]
    eye_cv = [eye_gl[0], -eye_gl[1], -eye_gl[2]]
    target_cv = [0.1, 0.2, 2.0]
    pose = page.evaluate("window.more4d.element.viewer.viewKeyframe('metres')")
    assert pose["position"] == pytest.approx(eye_cv, abs=1e-9) and pose["look_at"] == pytest.approx(target_cv, abs=1e-9)
    pose = page.evaluate("window.more4d.element.viewer.viewKeyframe('scene_depth')")
    assert pose["position"] == pytest.approx([c / depth for c in eye_cv], rel=1e-5)
    # the button, through the editor: frame 4 of 9 is time 0.5 -> the default's middle keyframe takes the view
    _load(page, EXAMPLE)
    page.click(".more4d-viewer button[data-action='add-keyframe']")
    doc = _doc_now(page)
    assert len(doc["keyframes"]) == 3
    got = parse_keyframes(doc, scene_depth=depth, num_frames=9)
    assert got.poses[4, :3, 3].tolist() == pytest.approx(eye_cv, abs=1e-4)
    forward = got.poses[4, :3, 2].numpy()
    to_target = [t - e for t, e in zip(target_cv, eye_cv)]
    norm = math.sqrt(sum(c * c for c in to_target))
    assert forward.tolist() == pytest.approx([c / norm for c in to_target], abs=1e-4)
    # frame 2 of 9 (time 0.25) is a new keyframe
    page.evaluate("window.more4d.element.viewer.setFrame(2)")
    page.click(".more4d-viewer button[data-action='add-keyframe']")
    doc = _doc_now(page)
    assert [k["time"] for k in doc["keyframes"]] == [0, 0.25, 0.5, 1]
    assert parse_keyframes(doc, scene_depth=depth, num_frames=9).poses[2, :3, 3].tolist() == pytest.approx(eye_cv, abs=1e-4)


def _apply(view, p):
    """A column-major 4x4 matrix applied to a point."""
    return [sum(view[c * 4 + r] * (list(p) + [1])[c] for c in range(4)) for r in range(3)]


def test_viewer_looks_through_the_path_camera(page, scene_and_path):
    scene, path = scene_and_path
    page.evaluate("window.more4d.element.viewer.setFrame(0)")
    page.check(".more4d-viewer input[data-action='look-through']")
    try:
        # through the camera, the view has the scene camera's vertical field of view: 2 atan(h / 2 fy)
        yfov = 2 * math.atan(scene.grid_hw[0] / (2 * float(scene.intrinsics[1, 1])))
        assert page.evaluate("window.more4d.element.viewer.fieldOfView()") == pytest.approx(yfov, rel=1e-6)
        for k in (3, 6):
            page.evaluate(f"window.more4d.element.viewer.setFrame({k})")
            pose = path.poses[k].numpy()
            centre_gl = [pose[0, 3], -pose[1, 3], -pose[2, 3]]
            forward_gl = [pose[0, 2], -pose[1, 2], -pose[2, 2]]
            eye = page.evaluate("window.more4d.element.viewer.viewCamera().eye")
            assert eye == pytest.approx(centre_gl, abs=1e-5)
            view = page.evaluate("window.more4d.element.viewer.viewMatrix()")  # column-major
            assert _apply(view, centre_gl) == pytest.approx([0, 0, 0], abs=1e-5)
            ahead = [c + f for c, f in zip(centre_gl, forward_gl)]
            assert _apply(view, ahead) == pytest.approx([0, 0, -1], abs=1e-5)  # the pose looks down the GL camera's -z
            down_gl = [pose[0, 1], -pose[1, 1], -pose[2, 1]]
            below = [c + d for c, d in zip(centre_gl, down_gl)]
            assert _apply(view, below) == pytest.approx([0, -1, 0], abs=1e-5)  # OpenCV's down is the screen's down
        assert _drawn_fraction(page) > 0.05
        assert page.evaluate("window.more4d.element.viewer.frustumLines().length") > 0
    finally:
        page.uncheck(".more4d-viewer input[data-action='look-through']")
    assert not page.evaluate("window.more4d.element.viewer.lookThrough")
    assert page.evaluate("window.more4d.element.viewer.fieldOfView()") == pytest.approx(math.pi / 3)  # orbiting


def test_send_to_keyframes_node_finds_the_directly_linked_node(page):
    # LiteGraph's shapes (graph.links as an object in the classic frontend, a Map in the newer one)
    found = page.evaluate("""() => {
        const nodes = {
            1: { id: 1, type: 'More4DCameraPathKeyframes', outputs: [{ links: [7] }] },
            2: { id: 2, type: 'More4DCameraPathPreset' },
            3: { id: 3, type: 'More4DPreview', inputs: [{ name: 'scene', link: 5 }, { name: 'camera_path', link: 7 }] },
            4: { id: 4, type: 'More4DPreview', inputs: [{ name: 'camera_path', link: 8 }] },
            5: { id: 5, type: 'More4DPreview', inputs: [{ name: 'camera_path', link: null }] },
        };
        const links = { 7: { id: 7, origin_id: 1, target_id: 3 }, 8: { id: 8, origin_id: 2, target_id: 4 } };
        const find = (graph, id) => window.more4d.linkedSourceNode(graph, nodes[id], 'camera_path', 'More4DCameraPathKeyframes');
        const plain = { links, getNodeById: (id) => nodes[id] };
        const map = { links: new Map(Object.entries(links).map(([k, v]) => [Number(k), v])), getNodeById: (id) => nodes[id] };
        return [find(plain, 3)?.id ?? null, find(map, 3)?.id ?? null, find(plain, 4), find(plain, 5)];
    }""")
    assert found == [1, 1, None, None]


# --- dragging a keyframe in the 4D viewer ---

def _orbit_basis(target, yaw, pitch, distance):
    """The orbit camera (glTF axes) as the viewer documents it: eye, forward, right, up."""
    eye = [target[0] - distance * math.cos(pitch) * math.sin(yaw), target[1] + distance * math.sin(pitch),
           target[2] + distance * math.cos(pitch) * math.cos(yaw)]
    f = [t - e for t, e in zip(target, eye)]
    n = math.sqrt(sum(c * c for c in f))
    f = [c / n for c in f]
    r = [-f[2], 0.0, f[0]]  # forward x world up (0, 1, 0)
    n = math.sqrt(sum(c * c for c in r))
    r = [c / n for c in r]
    u = [r[1] * f[2] - r[2] * f[1], r[2] * f[0] - r[0] * f[2], r[0] * f[1] - r[1] * f[0]]
    return eye, f, r, u


def test_dragging_a_keyframe_handle_moves_that_keyframe_under_the_pointer(page, scene_and_path):
    scene, _ = scene_and_path
    depth = scene.median_depth()
    page.evaluate("window.more4d.element.viewer.setLookThrough(false)")
    _load(page, EXAMPLE)
    page.evaluate("window.more4d.showHandles()")
    target, yaw, pitch, distance = [0.0, 0.0, -depth], 0.6, 0.3, 2.5 * depth
    page.evaluate(f"""() => {{ const v = window.more4d.element.viewer;
        v.target = {target}; v.yaw = {yaw}; v.pitch = {pitch}; v.distance = {distance}; v.draw(); }}""")
    rect = page.evaluate("(() => { const r = document.querySelector('.more4d-viewer canvas').getBoundingClientRect();"
                         " return [r.left, r.top, r.width, r.height]; })()")
    eye, f, r, u = _orbit_basis(target, yaw, pitch, distance)
    tan, aspect = math.tan(math.pi / 6), rect[2] / rect[3]  # orbit: 60 degrees vertical, the canvas's aspect
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731

    def to_pixel(p_gl):
        d = [a - b for a, b in zip(p_gl, eye)]
        z = dot(d, f)
        return (rect[0] + (dot(d, r) / (z * tan * aspect) + 1) / 2 * rect[2],
                rect[1] + (1 - dot(d, u) / (z * tan)) / 2 * rect[3])

    kf = EXAMPLE["keyframes"][1]  # time 0.5, position [0.15, -0.05, 0.1] scene depths
    start_gl = [kf["position"][0] * depth, -kf["position"][1] * depth, -kf["position"][2] * depth]
    x0, y0 = to_pixel(start_gl)
    x1, y1 = x0 + 40, y0 - 25
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2)
    page.mouse.move(x1, y1)
    page.mouse.up()
    # expected: the ray through the release pixel met with the plane through the start facing the view
    nx, ny = 2 * (x1 - rect[0]) / rect[2] - 1, 1 - 2 * (y1 - rect[1]) / rect[3]
    ray = [fk + nx * tan * aspect * rk + ny * tan * uk for fk, rk, uk in zip(f, r, u)]
    t = dot([s - e for s, e in zip(start_gl, eye)], f) / dot(ray, f)
    end_gl = [e + t * d for e, d in zip(eye, ray)]
    end_cv = [end_gl[0] / depth, -end_gl[1] / depth, -end_gl[2] / depth]
    doc = _doc_now(page)
    assert [k["time"] for k in doc["keyframes"]] == [0, 0.5, 1]
    assert doc["keyframes"][1]["position"] == pytest.approx(end_cv, abs=1e-4)
    assert abs(doc["keyframes"][1]["position"][0] - kf["position"][0]) > 0.02  # it really moved
    assert doc["keyframes"][1]["look_at"] == kf["look_at"]  # it keeps looking where it did
    assert doc["keyframes"][0] == EXAMPLE["keyframes"][0] and doc["keyframes"][2] == EXAMPLE["keyframes"][2]
    path = parse_keyframes(doc, scene_depth=depth, num_frames=9)  # the node reads what the drag wrote
    assert path.poses[4, :3, 3].tolist() == pytest.approx([c * depth for c in end_cv], abs=1e-3)
    # the handles follow the document; a press away from every handle orbits instead
    handles = page.evaluate("window.more4d.element.viewer.handles")
    assert handles[1] == pytest.approx(end_gl, abs=1e-3)
    page.mouse.move(rect[0] + 5, rect[1] + 5)
    page.mouse.down()
    page.mouse.move(rect[0] + 60, rect[1] + 5)
    page.mouse.up()
    assert _doc_now(page) == doc and page.evaluate("window.more4d.element.viewer.yaw") != pytest.approx(yaw)
