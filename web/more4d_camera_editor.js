// MoRe4D camera-path editor: a keyframe table (frame, time, position, look-at, roll, zoom) that reads and
// writes the keyframe JSON of the "MoRe4D Camera Path (Keyframes)" node (format more4d.camera_keyframes v1).
//
// The contract is the node's parser (more4d_core/camera/keyframes.py, parse_keyframes): every keyframe has
// exactly one of "frame" (index on the file's frame axis) or "time" (0..1 of the path), no two keyframes
// on the same frame, num_frames optional (1..4096). Every edit below goes through pure functions that
// return a new document and throw (leaving the old one) when the result would not parse.

export const FORMAT = "more4d.camera_keyframes";
export const MAX_FRAMES = 4096;
export const DEFAULT_FRAMES = 49;

const clone = (x) => JSON.parse(JSON.stringify(x));
const hasFrame = (kf) => Object.prototype.hasOwnProperty.call(kf, "frame");
const hasTime = (kf) => Object.prototype.hasOwnProperty.call(kf, "time");
const round = (x, digits = 6) => Number(x.toFixed(digits));

export function emptyPath(numFrames = DEFAULT_FRAMES) {
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

// The frame axis the parser puts "frame" keys on: num_frames when given, else the last frame + 1 when any
// keyframe gives a frame, else the node's count (its frames widget, the scene's, or 49).
export function frameAxis(data, fallback = DEFAULT_FRAMES) {
  if (data.num_frames !== undefined && data.num_frames !== null) return data.num_frames;
  const frames = data.keyframes.filter(hasFrame).map((kf) => kf.frame);
  if (frames.length) return Math.floor(Math.max(...frames)) + 1;
  return fallback > 0 ? fallback : DEFAULT_FRAMES;
}

// Position of a keyframe on the path as a fraction 0..1 (what the parser compares).
export function timeOf(data, kf, fallback = DEFAULT_FRAMES) {
  if (hasTime(kf)) return kf.time;
  const n = frameAxis(data, fallback);
  return n > 1 ? kf.frame / (n - 1) : 0;
}

export function frameOf(data, kf, fallback = DEFAULT_FRAMES) {
  if (hasFrame(kf)) return kf.frame;
  return Math.round(kf.time * (frameAxis(data, fallback) - 1));
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const isVec = (v, n) => Array.isArray(v) && v.length === n && v.every(isNum);

// The checks of parse_keyframes that an edit can break; throws with the parser's wording.
export function validate(data) {
  parsePath(data);
  if (!data.keyframes.length) throw new Error("camera keyframes need a non-empty 'keyframes' list");
  if (!["scene_depth", "metres", "meters", undefined].includes(data.units)) throw new Error("'units' must be 'scene_depth' or 'metres'");
  const nf = data.num_frames;
  if (nf !== undefined && !(Number.isInteger(nf) && nf >= 1 && nf <= MAX_FRAMES)) {
    throw new Error(`'num_frames' must be an integer from 1 to ${MAX_FRAMES}, got ${nf}`);
  }
  data.keyframes.forEach((kf, i) => {
    const where = `keyframes[${i}]`;
    if (hasFrame(kf) === hasTime(kf)) throw new Error(`${where} needs exactly one of 'frame' (index) or 'time' (0..1)`);
    if (hasFrame(kf) && !(isNum(kf.frame) && kf.frame >= 0 && kf.frame < MAX_FRAMES)) {
      throw new Error(`${where}.frame must be a frame index from 0 to ${MAX_FRAMES - 1}`);
    }
    if (hasTime(kf) && !(isNum(kf.time) && kf.time >= 0 && kf.time <= 1)) throw new Error(`${where}.time must be in [0, 1]`);
    if (kf.position !== undefined && !isVec(kf.position, 3)) throw new Error(`${where}.position must be 3 numbers`);
    if (kf.look_at !== undefined && !isVec(kf.look_at, 3)) throw new Error(`${where}.look_at must be 3 numbers`);
    if (kf.look_at !== undefined && kf.rotation !== undefined) throw new Error(`${where}: give either 'look_at' or 'rotation', not both`);
    if (kf.roll_deg !== undefined && !isNum(kf.roll_deg)) throw new Error(`${where}.roll_deg must be a number`);
    if (kf.zoom !== undefined && !(isNum(kf.zoom) && kf.zoom > 0)) throw new Error(`${where}.zoom must be > 0`);
  });
  const frames = data.keyframes.filter(hasFrame).map((kf) => kf.frame);
  if (nf !== undefined && frames.length && Math.max(...frames) > nf - 1) {
    throw new Error(`a keyframe is at frame ${Math.max(...frames)} but the path has only ${nf} frames (0..${nf - 1})`);
  }
  const ts = data.keyframes.map((kf) => timeOf(data, kf)).sort((a, b) => a - b);
  for (let i = 1; i < ts.length; i++) {
    if (!(ts[i] > ts[i - 1])) throw new Error("two keyframes fall on the same frame; give each its own frame");
  }
  return data;
}

// Keyframe rows in timeline order (the parser sorts them too; the table shows them sorted).
export function sortKeyframes(data, fallback = DEFAULT_FRAMES) {
  const out = clone(data);
  const keyed = out.keyframes.map((kf, i) => [timeOf(out, kf, fallback), i, kf]);
  keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  out.keyframes = keyed.map((k) => k[2]);
  return out;
}

// An edit that changes the frame axis of a document mixing frame and time keys (no num_frames) would slide
// the frame keys against the time keys: pin num_frames to the axis the user was looking at.
function keepAxis(before, after, fallback) {
  if (after.num_frames === undefined && after.keyframes.some(hasFrame) && after.keyframes.some(hasTime)) {
    const was = frameAxis(before, fallback);
    if (frameAxis(after, fallback) !== was) after.num_frames = was;
  }
  return after;
}

function finish(before, after, fallback) {
  return validate(sortKeyframes(keepAxis(before, after, fallback), fallback));
}

export function setTime(data, i, time, fallback = DEFAULT_FRAMES) {
  const t = Number(time);
  if (!(Number.isFinite(t) && t >= 0 && t <= 1)) throw new Error(`time must be a number from 0 to 1, got ${time}`);
  const out = clone(data);
  delete out.keyframes[i].frame;
  out.keyframes[i].time = t;
  return finish(data, out, fallback);
}

export function setFrame(data, i, frame, fallback = DEFAULT_FRAMES) {
  const f = Number(frame);
  if (!(Number.isInteger(f) && f >= 0 && f < MAX_FRAMES)) throw new Error(`frame must be a whole number from 0 to ${MAX_FRAMES - 1}, got ${frame}`);
  const out = clone(data);
  delete out.keyframes[i].time;
  out.keyframes[i].frame = f;
  return finish(data, out, fallback);
}

// "" / null / undefined removes num_frames (the node's frames widget or the scene decides).
export function setNumFrames(data, value, fallback = DEFAULT_FRAMES) {
  const out = clone(data);
  if (value === "" || value === null || value === undefined) {
    delete out.num_frames; // not re-pinned: the user asked for the node's / scene's count
    return validate(sortKeyframes(out, fallback));
  }
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= 1 && n <= MAX_FRAMES)) throw new Error(`frames must be a whole number from 1 to ${MAX_FRAMES}, got ${value}`);
  out.num_frames = n;
  return validate(sortKeyframes(out, fallback));
}

const lerp = (a, b, w) => a.map((x, k) => round(x + (b[k] - x) * w));

// A keyframe between a and b (weight w from a): position and look-at interpolated, roll and zoom too;
// a "rotation" orientation is copied from the nearer neighbour.
function blend(a, b, w) {
  const kf = { position: lerp(a.position || [0, 0, 0], b.position || [0, 0, 0], w) };
  const near = w < 0.5 ? a : b;
  if (a.look_at && b.look_at) kf.look_at = lerp(a.look_at, b.look_at, w);
  else if (near.look_at) kf.look_at = clone(near.look_at);
  else if (near.rotation) kf.rotation = clone(near.rotation);
  if (a.roll_deg !== undefined || b.roll_deg !== undefined) kf.roll_deg = round((a.roll_deg || 0) + ((b.roll_deg || 0) - (a.roll_deg || 0)) * w);
  if (a.zoom !== undefined || b.zoom !== undefined) kf.zoom = round((a.zoom ?? 1) + ((b.zoom ?? 1) - (a.zoom ?? 1)) * w);
  return kf;
}

// New keyframe in the middle of the largest gap of the timeline (before the first key or after the last
// one when that is the largest), in its neighbours' key kind, pose interpolated.
export function addKeyframe(data, fallback = DEFAULT_FRAMES) {
  const d = sortKeyframes(data, fallback);
  const kfs = d.keyframes;
  const n = frameAxis(d, fallback);
  const ts = kfs.map((kf) => timeOf(d, kf, fallback));
  // gaps: [left index or -1, right index or kfs.length, t0, t1]
  const gaps = [[-1, 0, 0, ts[0]]];
  for (let i = 1; i < kfs.length; i++) gaps.push([i - 1, i, ts[i - 1], ts[i]]);
  gaps.push([kfs.length - 1, kfs.length, ts[ts.length - 1], 1]);
  // a gap between frame keys only takes a whole frame strictly inside it
  const room = ([l, r, t0, t1]) => {
    const kinds = [kfs[l], kfs[r]].filter(Boolean);
    if (kinds.length && kinds.every(hasFrame)) {
      const f0 = l >= 0 ? kfs[l].frame : 0;
      const f1 = r < kfs.length ? kfs[r].frame : n - 1;
      const inside = l < 0 ? f1 - f0 >= 1 : r >= kfs.length ? f1 - f0 >= 1 : f1 - f0 >= 2;
      return inside ? t1 - t0 : -1;
    }
    return t1 - t0;
  };
  let best = null;
  for (const g of gaps) if (room(g) > 0 && (!best || room(g) > room(best))) best = g;
  if (!best) throw new Error("no free frame left between the keyframes: raise the frame count first");
  const [l, r] = best;
  const a = kfs[l] || kfs[r];
  const b = kfs[r] || kfs[l];
  const kinds = [kfs[l], kfs[r]].filter(Boolean);
  const kf = blend(a, b, l >= 0 && r < kfs.length ? 0.5 : 0);
  let key;
  if (kinds.every(hasFrame)) {
    const f0 = l >= 0 ? kfs[l].frame : 0;
    const f1 = r < kfs.length ? kfs[r].frame : n - 1;
    key = { frame: l < 0 ? Math.floor((f0 + f1) / 2) : r >= kfs.length ? Math.ceil((f0 + f1) / 2) : Math.round((f0 + f1) / 2) };
  } else {
    key = { time: round((best[2] + best[3]) / 2) };
  }
  const out = clone(d);
  out.keyframes.splice(r, 0, { ...key, ...kf });
  return finish(d, out, fallback);
}

// Removing keeps at least one keyframe (the parser needs a non-empty list).
export function removeKeyframe(data, i, fallback = DEFAULT_FRAMES) {
  if (data.keyframes.length <= 1) throw new Error("a camera path needs at least one keyframe");
  if (!(i >= 0 && i < data.keyframes.length)) throw new Error(`no keyframe ${i}`);
  const out = clone(data);
  out.keyframes.splice(i, 1);
  return finish(data, out, fallback);
}

// Moving a row up/down swaps the camera content (pose, roll, zoom) of two rows; the timeline keys
// (frame / time) stay where they were, so the rows stay sorted.
export function moveKeyframe(data, i, delta, fallback = DEFAULT_FRAMES) {
  const d = sortKeyframes(data, fallback);
  const j = i + delta;
  if (!(i >= 0 && i < d.keyframes.length && j >= 0 && j < d.keyframes.length)) throw new Error(`cannot move keyframe ${i} by ${delta}`);
  const timing = (kf) => (hasFrame(kf) ? { frame: kf.frame } : { time: kf.time });
  const content = (kf) => { const c = clone(kf); delete c.frame; delete c.time; return c; };
  const out = clone(d);
  out.keyframes[i] = { ...timing(d.keyframes[i]), ...content(d.keyframes[j]) };
  out.keyframes[j] = { ...timing(d.keyframes[j]), ...content(d.keyframes[i]) };
  return finish(d, out, fallback);
}

// A keyframe from the 4D viewer ({position, look_at} in the document's units) at viewer frame `frame` of
// `frames`: placed at that time (as a frame when the document uses frames only); a keyframe already there
// gets the new pose.
export function insertKeyframeAt(data, pose, frame, frames, fallback = DEFAULT_FRAMES) {
  const d = sortKeyframes(data, fallback);
  const t = frames > 1 ? frame / (frames - 1) : 0;
  const n = frameAxis(d, fallback);
  const key = d.keyframes.every(hasFrame) ? { frame: Math.round(t * (n - 1)) } : { time: round(t) };
  const at = hasFrame(key) ? key.frame / Math.max(1, n - 1) : key.time;
  const out = clone(d);
  const kf = { ...key, position: pose.position.map((x) => round(x)), look_at: pose.look_at.map((x) => round(x)) };
  const same = out.keyframes.findIndex((k) => Math.abs(timeOf(out, k, fallback) - at) < 1e-9);
  if (same >= 0) {
    const old = out.keyframes[same];
    delete old.rotation;
    delete old.roll_deg;
    out.keyframes[same] = { ...old, position: kf.position, look_at: kf.look_at };
  } else {
    out.keyframes.push(kf);
  }
  return finish(d, out, fallback);
}

// A request from the 4D viewer's "+ keyframe here" ({frame, frames, poseIn(units)}) applied to a document.
export function insertViewKeyframe(data, request, fallback = DEFAULT_FRAMES) {
  const units = data.units === undefined ? "scene_depth" : data.units;
  return insertKeyframeAt(data, request.poseIn(units), request.frame, request.frames, fallback);
}

const FIELDS = [
  ["position", 3, "position x y z"],
  ["look_at", 3, "look at x y z"],
  ["roll_deg", 1, "roll"],
  ["zoom", 1, "zoom"],
];

export class CameraPathEditor {
  // options.frames: the node's frame count when the JSON has no num_frames (a number or a function; 0 = unknown)
  constructor(root, data = emptyPath(), options = {}) {
    this.root = root;
    this.options = options;
    this.data = sortKeyframes(parsePath(data), this.fallback());
    this.onchange = null;
    this.onrender = null;
    this.error = "";
    this.render();
  }

  fallback() {
    const f = typeof this.options.frames === "function" ? this.options.frames() : this.options.frames;
    return f > 0 ? f : DEFAULT_FRAMES;
  }

  setData(data) {
    this.data = sortKeyframes(parsePath(data), this.fallback());
    this.error = "";
    this.render();
  }

  toJSON() {
    return serializePath(this.data);
  }

  // apply one of the pure edits; on an invalid result keep the document and show why
  apply(edit) {
    try {
      this.data = edit(this.data, this.fallback());
      this.error = "";
    } catch (e) {
      this.error = String(e.message || e);
      this.render();
      return false;
    }
    this.render();
    this._emit();
    return true;
  }

  _emit() {
    if (this.onchange) this.onchange(this.toJSON());
  }

  render() {
    const root = this.root;
    const fallback = this.fallback();
    root.innerHTML = "";
    root.className = "more4d-camera-editor";
    const head = document.createElement("div");
    head.style.cssText = "display:flex;gap:6px;align-items:center;margin-bottom:4px;font:12px sans-serif;flex-wrap:wrap;";
    const frames = document.createElement("input");
    frames.type = "number";
    frames.min = "1";
    frames.max = String(MAX_FRAMES);
    frames.style.width = "56px";
    frames.dataset.field = "num_frames";
    frames.value = this.data.num_frames === undefined ? "" : String(this.data.num_frames);
    frames.placeholder = "scene";
    frames.title = "num_frames: empty = not set (the node's frames widget or the scene decides)";
    frames.addEventListener("change", () => this.apply((d, fb) => setNumFrames(d, frames.value.trim(), fb)));
    const units = document.createElement("select");
    units.dataset.field = "units";
    for (const u of ["scene_depth", "metres"]) units.add(new Option(u, u, false, u === (this.data.units === "meters" ? "metres" : this.data.units || "scene_depth")));
    units.addEventListener("change", () => this.apply((d) => ({ ...clone(d), units: units.value })));
    const add = document.createElement("button");
    add.textContent = "+ keyframe";
    add.dataset.action = "add";
    add.addEventListener("click", () => this.apply((d, fb) => addKeyframe(d, fb)));
    head.append("frames", frames, "units", units, add);
    const table = document.createElement("table");
    table.style.cssText = "border-collapse:collapse;font:12px monospace;";
    const header = table.insertRow();
    for (const title of ["frame", "time", ...FIELDS.map((f) => f[2]), ""]) header.insertCell().textContent = title;
    const last = this.data.keyframes.length - 1;
    this.data.keyframes.forEach((kf, row) => {
      const tr = table.insertRow();
      // frame and time: the key the keyframe has is its value, the other one a grey derived placeholder
      for (const [key, own, derived, setter] of [
        ["frame", hasFrame(kf), String(frameOf(this.data, kf, fallback)), setFrame],
        ["time", hasTime(kf), String(round(timeOf(this.data, kf, fallback), 4)), setTime],
      ]) {
        const input = document.createElement("input");
        input.style.width = "52px";
        input.dataset.field = key;
        input.dataset.row = String(row);
        input.value = own ? String(kf[key]) : "";
        input.placeholder = own ? "" : derived;
        input.title = own ? `${key} (set)` : `${key} ${derived} (derived; type a value to use ${key} instead)`;
        input.addEventListener("change", () => {
          const text = input.value.trim();
          if (text === "") { this.render(); return; } // a keyframe keeps its one timing key
          this.apply((d, fb) => setter(d, row, Number(text), fb));
        });
        tr.insertCell().append(input);
      }
      for (const [key, width] of FIELDS) {
        const input = document.createElement("input");
        input.style.width = width === 1 ? "44px" : "120px";
        input.dataset.field = key;
        input.dataset.row = String(row);
        const value = kf[key];
        input.value = value === undefined ? "" : Array.isArray(value) ? value.join(" ") : String(value);
        if (key === "look_at" && value === undefined && kf.rotation) input.placeholder = "rotation";
        input.addEventListener("change", () => {
          const text = input.value.trim();
          this.apply((d) => {
            const out = clone(d);
            const k = out.keyframes[row];
            if (text === "") delete k[key];
            else if (width === 1) k[key] = Number(text);
            else k[key] = text.split(/[\s,]+/).map(Number);
            if (key === "look_at" && k.look_at && k.rotation) delete k.rotation;
            return validate(out);
          });
        });
        tr.insertCell().append(input);
      }
      const buttons = tr.insertCell();
      for (const [label, action, enabled, edit] of [
        ["↑", "up", row > 0, (d, fb) => moveKeyframe(d, row, -1, fb)],
        ["↓", "down", row < last, (d, fb) => moveKeyframe(d, row, 1, fb)],
        ["×", "remove", last > 0, (d, fb) => removeKeyframe(d, row, fb)],
      ]) {
        const b = document.createElement("button");
        b.textContent = label;
        b.dataset.action = action;
        b.dataset.row = String(row);
        b.disabled = !enabled;
        b.addEventListener("click", () => this.apply(edit));
        buttons.append(b);
      }
    });
    const error = document.createElement("div");
    error.className = "more4d-editor-error";
    error.style.cssText = "color:#f88;font:12px sans-serif;min-height:0;";
    error.textContent = this.error;
    root.append(head, table, error);
    if (this.onrender) this.onrender();
  }
}

// A keyframe's position set from the 4D viewer (a handle dragged; position in the document's units); its
// orientation (look_at or rotation), roll, zoom and timing stay, so the camera keeps looking where it did.
export function setKeyframePosition(data, i, position, fallback = DEFAULT_FRAMES) {
  if (!isVec(position, 3)) throw new Error("a keyframe position must be 3 numbers");
  const d = sortKeyframes(data, fallback);
  if (!(i >= 0 && i < d.keyframes.length)) throw new Error(`no keyframe ${i}`);
  const out = clone(d);
  out.keyframes[i].position = position.map((x) => round(x));
  return finish(d, out, fallback);
}

// The keyframes' positions in timeline order (what the viewer shows as draggable handles; a keyframe
// without a position sits at the input camera, as the parser reads it).
export function keyframePositions(data, fallback = DEFAULT_FRAMES) {
  return sortKeyframes(data, fallback).keyframes.map((kf) => (kf.position ? [...kf.position] : [0, 0, 0]));
}
