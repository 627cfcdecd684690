// ComfyUI glue: the 4D viewer inside "MoRe4D Preview 4D Scene" and a keyframe editor button on
// "MoRe4D Camera Path (Keyframes)". Uses ComfyUI's classic extension API (app.registerExtension,
// node.addDOMWidget); the viewer, the editor and the graph lookup are independent modules, tested in a
// browser without ComfyUI - this file only wires them (it cannot be loaded outside ComfyUI's frontend).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { createViewerElement } from "./more4d_viewer.js";
import {
  CameraPathEditor, emptyPath, insertViewKeyframe, keyframePositions, parsePath, serializePath, setKeyframePosition,
} from "./more4d_camera_editor.js";
import { linkedSourceNode } from "./more4d_graph.js";

const KEYFRAMES_NODE = "More4DCameraPathKeyframes";

function fileUrl(file) {
  const params = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder || "", type: file.type || "temp" });
  return api.apiURL(`/view?${params}`);
}

function notify(text, severity = "warn") {
  const toast = app.extensionManager?.toast;
  if (toast?.add) toast.add({ severity, summary: "MoRe4D", detail: text, life: 5000 });
  else if (severity !== "success") window.alert(`MoRe4D: ${text}`);
}

// grow / shrink the node to its widgets (the DOM widgets report their heights below)
function fitNode(node) {
  const size = node.computeSize();
  node.setSize([Math.max(node.size[0], size[0]), size[1]]);
  app.graph?.setDirtyCanvas(true, true);
}

// a DOM widget whose height follows its element (hidden: 0); both the newer frontend's options and
// the older computeSize are set
function addSizedDOMWidget(node, name, type, element) {
  const height = () => (element.style.display === "none" ? 0 : Math.ceil(element.scrollHeight) + 8);
  const widget = node.addDOMWidget(name, type, element, { serialize: false, getMinHeight: height, getHeight: height });
  widget.computeSize = (width) => [width, height()];
  return widget;
}

// "+ keyframe here" in a Preview node: the view goes to the Keyframes node linked into its camera_path
function sendToKeyframesNode(preview, request) {
  const source = linkedSourceNode(app.graph, preview, "camera_path", KEYFRAMES_NODE);
  if (!source || !source.more4dAddView) {
    notify("link a 'MoRe4D Camera Path (Keyframes)' node directly into this node's camera_path input first");
    return;
  }
  try {
    source.more4dAddView(request);
    notify(`keyframe at frame ${request.frame + 1}/${request.frames} sent to the Keyframes node`, "success");
  } catch (e) {
    notify(String(e.message || e));
  }
}

// the linked Keyframes node's keyframes as draggable handles in a Preview node's viewer (none when unlinked)
function showLinkedKeyframes(preview) {
  const source = linkedSourceNode(app.graph, preview, "camera_path", KEYFRAMES_NODE);
  let handles = { positions: [], units: undefined };
  try { if (source?.more4dKeyframes) handles = source.more4dKeyframes(); } catch (e) { /* invalid JSON: no handles */ }
  preview.more4dViewer.setKeyframeHandles(handles.positions, handles.units);
}

// a handle dragged in a Preview node's viewer: the linked Keyframes node's keyframe takes the new position
function moveLinkedKeyframe(preview, request) {
  const source = linkedSourceNode(app.graph, preview, "camera_path", KEYFRAMES_NODE);
  if (!source?.more4dMoveKeyframe) return;
  try {
    source.more4dMoveKeyframe(request);
  } catch (e) {
    notify(String(e.message || e));
  }
  showLinkedKeyframes(preview);
}

app.registerExtension({
  name: "more4d.viewer",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === "More4DPreview") {
      const onExecuted = nodeType.prototype.onExecuted;
      nodeType.prototype.onExecuted = function (message) {
        onExecuted?.apply(this, arguments);
        const files = message?.more4d_glb;
        if (!files || !files.length) return;
        if (!this.more4dViewer) {
          this.more4dViewer = createViewerElement({ width: 480, height: 360 });
          this.more4dViewer.onkeyframe = (request) => sendToKeyframesNode(this, request);
          this.more4dViewer.onkeyframemove = (request) => moveLinkedKeyframe(this, request);
          // the Keyframes node may have changed since: refresh the handles when the pointer comes in
          this.more4dViewer.addEventListener("pointerenter", () => showLinkedKeyframes(this));
          this.addDOMWidget("viewer", "more4d_viewer", this.more4dViewer, { serialize: false });
          this.setSize([Math.max(this.size[0], 500), Math.max(this.size[1], 520)]);
        }
        fetch(fileUrl(files[0])).then((r) => r.arrayBuffer()).then((buf) => {
          this.more4dViewer.loadBuffer(buf);
          showLinkedKeyframes(this);
        });
      };
    }
    if (nodeData.name === KEYFRAMES_NODE) {
      const onNodeCreated = nodeType.prototype.onNodeCreated;
      nodeType.prototype.onNodeCreated = function () {
        onNodeCreated?.apply(this, arguments);
        const node = this;
        const jsonWidget = this.widgets?.find((w) => w.name === "keyframes_json");
        const framesWidget = this.widgets?.find((w) => w.name === "frames");
        const frames = () => Number(framesWidget?.value) || 0;
        const holder = document.createElement("div");
        holder.style.display = "none";
        const editor = new CameraPathEditor(holder, emptyPath(), { frames });
        const load = () => {
          try { editor.setData(parsePath(jsonWidget.value)); } catch (e) { notify(`keyframes_json: ${e.message || e}`); }
        };
        editor.onchange = (text) => { if (jsonWidget) jsonWidget.value = text; };
        editor.onrender = () => requestAnimationFrame(() => fitNode(node));
        this.addWidget("button", "edit keyframes", null, () => {
          if (holder.style.display === "none") { holder.style.display = "block"; load(); } else { holder.style.display = "none"; }
          requestAnimationFrame(() => fitNode(node));
        });
        addSizedDOMWidget(this, "keyframe_editor", "more4d_editor", holder);
        // a view from a Preview node's "+ keyframe here" (through the editor's logic; throws when invalid)
        this.more4dAddView = (request) => {
          const next = insertViewKeyframe(parsePath(jsonWidget.value), request, frames());
          jsonWidget.value = serializePath(next);
          if (holder.style.display !== "none") editor.setData(next);
          app.graph?.setDirtyCanvas(true, true);
        };
        // the keyframes a linked Preview node's viewer shows as handles, and a dragged handle's new position
        this.more4dKeyframes = () => {
          const doc = parsePath(jsonWidget.value);
          return { positions: keyframePositions(doc, frames()), units: doc.units };
        };
        this.more4dMoveKeyframe = ({ index, positionIn }) => {
          const doc = parsePath(jsonWidget.value);
          const next = setKeyframePosition(doc, index, positionIn(doc.units), frames());
          jsonWidget.value = serializePath(next);
          if (holder.style.display !== "none") editor.setData(next);
          app.graph?.setDirtyCanvas(true, true);
        };
      };
    }
  },
});
