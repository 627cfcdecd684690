// MoRe4D camera-path editor: a keyframe table (frame, position, look-at, roll, zoom) that reads and
// writes the keyframe JSON of the "MoRe4D Camera Path (Keyframes)" node (format more4d.camera_keyframes v1).

export const FORMAT = "more4d.camera_keyframes";

export function emptyPath(numFrames = 49) {
  return {
    format: FORMAT, version: 1, num_frames: numFrames, units: "scene_depth", interpolation: "spline",
    keyframes: [
      { frame: 0, position: [0, 0, 0], look_at: [0, 0, 1] },
      { frame: numFrames - 1, position: [0.2, 0, 0.1], look_at: [0, 0, 1] },
    ],
  };
}

export function parsePath(text) {
  const data = typeof text === "string" ? JSON.parse(text) : text;
  if (!data || !Array.isArray(data.keyframes)) throw new Error("keyframe JSON needs a 'keyframes' list");
  if (data.format && data.format !== FORMAT) throw new Error(`not a ${FORMAT} document`);
  return data;
}

export function serializePath(data) {
  return JSON.stringify(data, null, 2);
}

const FIELDS = [
  ["frame", 1, "frame"],
  ["position", 3, "position x y z"],
  ["look_at", 3, "look at x y z"],
  ["roll_deg", 1, "roll"],
  ["zoom", 1, "zoom"],
];

export class CameraPathEditor {
  constructor(root, data = emptyPath()) {
    this.root = root;
    this.data = parsePath(data);
    this.onchange = null;
    this.render();
  }

  setData(data) {
    this.data = parsePath(data);
    this.render();
  }

  toJSON() {
    return serializePath(this.data);
  }

  _emit() {
    if (this.onchange) this.onchange(this.toJSON());
  }

  render() {
    const root = this.root;
    root.innerHTML = "";
    root.className = "more4d-camera-editor";
    const head = document.createElement("div");
    head.style.cssText = "display:flex;gap:6px;align-items:center;margin-bottom:4px;font:12px sans-serif;";
    const frames = document.createElement("input");
    frames.type = "number";
    frames.min = "1";
    frames.value = String(this.data.num_frames || 49);
    frames.title = "frames";
    frames.addEventListener("change", () => { this.data.num_frames = Math.max(1, parseInt(frames.value, 10) || 1); this._emit(); });
    const units = document.createElement("select");
    for (const u of ["scene_depth", "metres"]) units.add(new Option(u, u, false, u === this.data.units));
    units.addEventListener("change", () => { this.data.units = units.value; this._emit(); });
    const add = document.createElement("button");
    add.textContent = "+ keyframe";
    add.addEventListener("click", () => {
      const last = this.data.keyframes[this.data.keyframes.length - 1];
      this.data.keyframes.push({ ...JSON.parse(JSON.stringify(last)), frame: (last.frame || 0) + 8 });
      this.render();
      this._emit();
    });
    head.append("frames", frames, "units", units, add);
    const table = document.createElement("table");
    table.style.cssText = "border-collapse:collapse;font:12px monospace;";
    const header = table.insertRow();
    for (const [, , title] of FIELDS) header.insertCell().textContent = title;
    header.insertCell();
    this.data.keyframes.forEach((kf, row) => {
      const tr = table.insertRow();
      for (const [key, width] of FIELDS) {
        const cell = tr.insertCell();
        const input = document.createElement("input");
        input.style.width = width === 1 ? "48px" : "120px";
        input.dataset.field = key;
        input.dataset.row = String(row);
        const value = kf[key];
        input.value = value === undefined ? "" : Array.isArray(value) ? value.join(" ") : String(value);
        input.addEventListener("change", () => {
          const text = input.value.trim();
          if (text === "") delete kf[key];
          else if (width === 1) kf[key] = Number(text);
          else kf[key] = text.split(/[\s,]+/).map(Number);
          if (key === "look_at" && kf.rotation) delete kf.rotation;
          this._emit();
        });
        cell.append(input);
      }
      const del = document.createElement("button");
      del.textContent = "×";
      del.addEventListener("click", () => { this.data.keyframes.splice(row, 1); this.render(); this._emit(); });
      tr.insertCell().append(del);
    });
    root.append(head, table);
  }
}
