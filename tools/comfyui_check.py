"""The pack in a real ComfyUI: install a copy, start the server on a loopback port, check what it
registers and serves, queue the shipped workflows over its HTTP API and report how each ran.

    python tools/comfyui_check.py --comfyui /path/to/ComfyUI --python /path/to/ComfyUI/.venv/bin/python \
        [--browser /usr/bin/chromium]

ComfyUI needs its own environment (its requirements; `--cpu` works without a GPU). The pack is
copied (the files git tracks) into ``custom_nodes/ComfyUI-MoRe4D`` of that ComfyUI, replacing an
earlier copy; outputs go to a temporary folder. Only 127.0.0.1 is used. Exit status 0 when every
check passed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nodes.workflow_format import CONTROL_VALUES, is_widget  # noqa: E402

PACK = "ComfyUI-MoRe4D"
RUNNABLE_HERE = ("more4d_default", "more4d_external_depth")  # need no model files beyond the pack's


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, path: str):
    with urllib.request.urlopen(base + path, timeout=30) as r:
        body = r.read()
    return json.loads(body) if body[:1] in (b"{", b"[") else body


def _post(base: str, path: str, data: dict):
    req = urllib.request.Request(base + path, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return {"http_error": exc.code, "body": json.loads(exc.read() or b"{}")}


V3_COMPARE = """
import json, sys
sys.argv += ["--cpu"]
sys.path[:0] = [{repo!r}, {comfyui!r}]  # our nodes package before ComfyUI's nodes.py
import comfy.options
comfy.options.enable_args_parsing()
import comfy.cli_args
from comfy_api.latest import io
from nodes import NODE_CLASS_MAPPINGS as V1, NODE_DISPLAY_NAME_MAPPINGS as TITLES
from nodes.v3 import v3_nodes
from nodes.workflow_format import check_workflow
from nodes.workflow_library import CORE_NODES
V3 = v3_nodes(io, V1, TITLES)
problems = []
for node_id, cls in V3.items():
    cls.GET_SCHEMA()  # ComfyUI's own validation of the schema
    new, old = cls.INPUT_TYPES(), V1[node_id].INPUT_TYPES()
    for section in ("required", "optional"):
        if list(new.get(section, {{}})) != list(old.get(section, {{}})):
            problems.append(f"{{node_id}} {{section}} inputs differ")
    if tuple(cls.RETURN_TYPES) != tuple(V1[node_id].RETURN_TYPES):
        problems.append(f"{{node_id}} outputs differ")
for path in sorted(__import__("pathlib").Path({repo!r}, "workflows").glob("*.json")):
    doc = json.loads(path.read_text())
    problems += [f"{{path.name}}: {{p}}" for p in check_workflow(doc, V3, CORE_NODES)]
print(json.dumps({{"v3_nodes": len(V3), "problems": problems}}))
"""


def compare_v3(comfyui: Path, python: str) -> dict:
    """In ComfyUI's own Python: every node as a real ``io.ComfyNode`` (ComfyUI validates each schema),
    the same inputs in the same order and outputs as the classic classes, and every shipped workflow
    valid against the V3 classes."""
    done = subprocess.run([python, "-c", V3_COMPARE.format(comfyui=str(comfyui), repo=str(REPO))],
                          capture_output=True, text=True, cwd=comfyui)
    if done.returncode != 0:
        return {"ok": False, "error": done.stderr[-2000:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "ok": not result["problems"]}


def install(comfyui: Path) -> Path:
    target = comfyui / "custom_nodes" / PACK
    if target.exists():
        shutil.rmtree(target)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        src, dst = REPO / name.decode(), target / name.decode()
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return target


def api_prompt(doc: dict, object_info: dict) -> dict:
    """A UI workflow as an API prompt: widget values by input name (the order ComfyUI's object_info
    gives, with the extra seed-control value skipped), links as [node id, output slot]."""
    links = {link[0]: link for link in doc.get("links", [])}
    prompt = {}
    for node in doc["nodes"]:
        if node.get("mode", 0) != 0:
            continue
        info = object_info[node["type"]]["input"]
        linked = {i["name"]: links[i["link"]] for i in node.get("inputs", []) if i.get("link") is not None}
        inputs: dict = {}
        values = list(node.get("widgets_values") or [])
        for section in ("required", "optional"):
            for name, spec in (info.get(section) or {}).items():
                widget = is_widget(spec)
                if name in linked:
                    link = linked[name]
                    inputs[name] = [str(link[1]), link[2]]
                    if widget and values:  # a converted widget keeps its slot in widgets_values
                        values.pop(0)
                    continue
                if not widget or not values:
                    continue
                inputs[name] = values.pop(0)
                opts = spec[1] if len(spec) > 1 else {}
                if opts.get("control_after_generate") and values and values[0] in CONTROL_VALUES:
                    values.pop(0)
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def run_workflow(base: str, name: str, object_info: dict, timeout: float) -> dict:
    doc = json.loads((REPO / "workflows" / f"{name}.json").read_text())
    prompt = api_prompt(doc, object_info)
    start = time.perf_counter()
    answer = _post(base, "/prompt", {"prompt": prompt, "client_id": "more4d-check"})
    if "prompt_id" not in answer:
        return {"workflow": name, "ok": False, "error": answer}
    pid = answer["prompt_id"]
    while time.perf_counter() - start < timeout:
        history = _get(base, f"/history/{pid}")
        if pid in history:
            entry = history[pid]
            status = entry.get("status", {})
            files = [f for out in entry.get("outputs", {}).values() for f in out.get("text", [])
                     if isinstance(f, str)]
            return {"workflow": name, "ok": status.get("status_str") == "success", "seconds": round(time.perf_counter() - start, 1),
                    "outputs": files, "messages": [m[0] for m in status.get("messages", [])]}
        time.sleep(1.0)
    return {"workflow": name, "ok": False, "error": f"not finished after {timeout} s"}


BROWSER_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


def browser_check(base: str, chromium: str, timeout: float) -> dict:
    """ComfyUI's own frontend in headless Chromium (playwright): the keyframe editor opens inside its
    node, grows the node and writes JSON the node's parser accepts; the default workflow queued from
    the page shows its scene in the Preview node's viewer."""
    from playwright.sync_api import sync_playwright

    from more4d_core.camera.keyframes import parse_keyframes

    doc = json.loads((REPO / "workflows" / "more4d_default.json").read_text())
    out: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base, wait_until="domcontentloaded")
        page.wait_for_function("window.app && window.app.graph && window.LiteGraph", timeout=90000)
        page.wait_for_timeout(2000)
        page.keyboard.press("Escape")  # the first-run template dialog
        editor = page.evaluate("""async () => {
            const node = LiteGraph.createNode("More4DCameraPathKeyframes");
            app.graph.add(node);
            const before = node.size[1];
            const button = node.widgets.find((w) => w.type === "button");
            button.callback?.(button, app.canvas, node);
            await new Promise((r) => setTimeout(r, 300));
            const root = document.querySelector(".more4d-camera-editor");
            const add = [...root.querySelectorAll("button")].find((b) => b.textContent.includes("keyframe"));
            add.click();
            await new Promise((r) => setTimeout(r, 300));
            const json = node.widgets.find((w) => w.name === "keyframes_json").value;
            return {before, after: node.size[1], rows: root.querySelectorAll("tr").length - 1, json};
        }""")
        path = parse_keyframes(editor.pop("json"), scene_depth=2.0)
        out["editor"] = {**editor, "parsed_frames": path.num_frames, "ok": editor["after"] > editor["before"]}
        page.evaluate("async (doc) => { await app.loadGraphData(doc); await app.queuePrompt(0, 1); }", doc)
        start = time.perf_counter()
        page.wait_for_function("""() => { const n = app.graph._nodes.find((n) => n.type === 'More4DPreview');
            return n && n.more4dViewer && n.more4dViewer.viewer.data; }""", timeout=timeout * 1000, polling=1000)
        viewer = page.evaluate("""() => { const v = app.graph._nodes.find((n) => n.type === 'More4DPreview').more4dViewer.viewer;
            return {frames: v.data.frames.length, points: v.data.count, camera_path: !!v.data.cameraPath}; }""")
        out["viewer"] = {**viewer, "seconds": round(time.perf_counter() - start, 1), "ok": viewer["frames"] > 1}
        out["drag"] = _drag_check(page)
        out["page_errors"] = [e for e in errors if "more4d" in e.lower()]
        browser.close()
    return out


def _drag_check(page) -> dict:
    """A Keyframes node linked into the Preview node's camera_path: its keyframes become handles in the
    viewer; dragging one with the mouse changes that keyframe's position in the node's JSON (parsed by
    the node's parser)."""
    from more4d_core.camera.keyframes import parse_keyframes

    start = page.evaluate("""async () => {
        const preview = app.graph._nodes.find((n) => n.type === 'More4DPreview');
        const keys = LiteGraph.createNode('More4DCameraPathKeyframes');
        app.graph.add(keys);
        keys.connect(0, preview, preview.inputs.findIndex((i) => i.name === 'camera_path'));
        // the node sits in the bottom-right corner, under the frontend's minimap: bring it to the middle
        app.canvas.centerOnNode(preview);
        app.canvas.setDirty(true, true);
        await new Promise((r) => setTimeout(r, 500));
        const v = preview.more4dViewer.viewer;
        v.yaw = 0.8; v.pitch = 0.35; v.distance = 2.5 * v.sceneDepth(); v.draw();
        preview.more4dViewer.dispatchEvent(new PointerEvent('pointerenter'));
        const i = v.handles.length - 1;
        const s = i >= 0 ? v.screenOf(v.handles[i]) : null;
        const r = v.canvas.getBoundingClientRect();
        window.__more4dKeys = keys;
        window.__more4dDowns = 0;
        v.canvas.addEventListener('pointerdown', () => { window.__more4dDowns += 1; });
        const x = s ? r.left + s[0] : null, y = s ? r.top + s[1] : null;
        const top = x === null ? null : document.elementFromPoint(x, y);
        return {handles: v.handles.length, x, y, on_top: top ? `${top.tagName}.${top.className}` : null,
                json: keys.widgets.find((w) => w.name === 'keyframes_json').value};
    }""")
    before = json.loads(start.pop("json"))
    if start["x"] is None:
        return {**start, "ok": False, "why": "the last keyframe's handle is not in view"}
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(start["x"] + 20, start["y"] - 10)
    page.mouse.move(start["x"] + 40, start["y"] - 20)
    page.mouse.up()
    start["pointer_downs"] = page.evaluate("window.__more4dDowns")
    after = json.loads(page.evaluate("window.__more4dKeys.widgets.find((w) => w.name === 'keyframes_json').value"))
    parse_keyframes(after, scene_depth=2.0)  # the node reads what the drag wrote (raises otherwise)
    moved = [b.get("position") != a.get("position") for b, a in zip(before["keyframes"], after["keyframes"])]
    return {**start, "moved": moved, "last_before": before["keyframes"][-1].get("position"),
            "last_after": after["keyframes"][-1].get("position"), "ok": moved == [False] * (len(moved) - 1) + [True]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--comfyui", type=Path, required=True, help="a ComfyUI checkout (main.py inside)")
    parser.add_argument("--python", default=sys.executable, help="the Python of ComfyUI's environment")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per workflow")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--browser", default=None, metavar="CHROMIUM",
                        help="also drive ComfyUI's frontend in this Chromium (needs playwright): editor and viewer")
    args = parser.parse_args(argv)
    if not (args.comfyui / "main.py").is_file():
        parser.error(f"{args.comfyui} has no main.py: give a ComfyUI checkout")
    install(args.comfyui)
    report_v3 = compare_v3(args.comfyui, args.python)
    out = Path(tempfile.mkdtemp(prefix="more4d-comfy-"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(out / "server.log", "w")
    server = subprocess.Popen([args.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                               "--output-directory", str(out / "output"), "--disable-auto-launch"],
                              cwd=args.comfyui, stdout=log, stderr=subprocess.STDOUT)
    report: dict = {"server_log": str(out / "server.log"), "v3": report_v3}
    try:
        start = time.perf_counter()
        object_info = None
        while time.perf_counter() - start < 300 and server.poll() is None:
            try:
                object_info = _get(base, "/object_info")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(1.0)
        if object_info is None:
            print(f"ComfyUI did not start; see {out / 'server.log'}")
            return 1
        report["startup_s"] = round(time.perf_counter() - start, 1)
        ours = sorted(k for k in object_info if k.startswith("More4D"))
        expected = sorted(json.loads(subprocess.run(
            [sys.executable, "-c", "import json, sys; sys.path.insert(0, '.'); from nodes import NODE_CLASS_MAPPINGS;"
             " print(json.dumps(list(NODE_CLASS_MAPPINGS)))"], cwd=REPO, capture_output=True, text=True, check=True).stdout))
        report["nodes"] = {"registered": len(ours), "expected": len(expected),
                           "missing": sorted(set(expected) - set(ours))}
        templates = _get(base, "/workflow_templates")
        report["templates"] = sorted(templates.get(PACK, []))
        extensions = _get(base, "/extensions")
        report["scripts"] = sorted(e for e in extensions if f"/{PACK}/" in e)
        import_line = next((line for line in (out / "server.log").read_text().splitlines()
                            if PACK in line and "seconds" in line), "")
        report["import"] = import_line.strip()
        report["v3"]["registered"] = next((line.split("MoRe4D: ", 1)[1] for line in (out / "server.log").read_text().splitlines()
                                           if "V3 schema" in line), "not on V3")
        report["runs"] = [run_workflow(base, name, object_info, args.timeout) for name in RUNNABLE_HERE]
        if args.browser:
            report["browser"] = browser_check(base, args.browser, args.timeout)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    ok = (not report["nodes"]["missing"] and len(report["templates"]) == 4 and report["scripts"] and report["v3"]["ok"]
          and all(r["ok"] for r in report["runs"]))
    if "browser" in report:
        browser = report["browser"]
        ok = ok and all(browser[k]["ok"] for k in ("editor", "viewer", "drag")) and not browser["page_errors"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
