// ComfyUI glue: the 4D viewer inside "MoRe4D Preview 4D Scene" and a keyframe editor button on
// "MoRe4D Camera Path (Keyframes)". Uses ComfyUI's classic extension API (app.registerExtension,
// node.addDOMWidget); the viewer and editor themselves are independent modules.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { createViewerElement } from "./more4d_viewer.js";
import { CameraPathEditor, parsePath } from "./more4d_camera_editor.js";

function fileUrl(file) {
  const params = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder || "", type: file.type || "temp" });
  return api.apiURL(`/view?${params}`);
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
          this.addDOMWidget("viewer", "more4d_viewer", this.more4dViewer, { serialize: false });
          this.setSize([Math.max(this.size[0], 500), Math.max(this.size[1], 480)]);
        }
        fetch(fileUrl(files[0])).then((r) => r.arrayBuffer()).then((buf) => this.more4dViewer.loadBuffer(buf));
      };
    }
    if (nodeData.name === "More4DCameraPathKeyframes") {
      const onNodeCreated = nodeType.prototype.onNodeCreated;
      nodeType.prototype.onNodeCreated = function () {
        onNodeCreated?.apply(this, arguments);
        const jsonWidget = this.widgets?.find((w) => w.name === "keyframes_json");
        const holder = document.createElement("div");
        holder.style.display = "none";
        const editor = new CameraPathEditor(holder);
        editor.onchange = (text) => { if (jsonWidget) jsonWidget.value = text; };
        this.addWidget("button", "edit keyframes", null, () => {
          if (holder.style.display === "none") {
            try { editor.setData(parsePath(jsonWidget.value)); } catch (e) { console.warn("MoRe4D:", e); }
            holder.style.display = "block";
          } else {
            holder.style.display = "none";
          }
        });
        this.addDOMWidget("keyframe_editor", "more4d_editor", holder, { serialize: false });
      };
    }
  },
});
