// MoRe4D 4D viewer: plays the animated point cloud of a MoRe4D GLB (one node per frame, as written by
// more4d_core.export.gltf) with orbit controls, play/pause, frame scrubbing and the camera path drawn
// as a curve with small camera frusta, "look through camera" along that path, and the current view as a
// keyframe (OpenCV scene coordinates, as the Keyframes node reads them); the keyframes of a linked Keyframes
// node are handles that can be dragged in the view plane. Plain WebGL, no library and no network access beyond the GLB it is given.

const GLB_MAGIC = 0x46546c67;
const JSON_CHUNK = 0x4e4f534a;
const BIN_CHUNK = 0x004e4942;

export function parseGLB(buffer) {
  const view = new DataView(buffer);
  if (view.getUint32(0, true) !== GLB_MAGIC) throw new Error("not a GLB file");
  let offset = 12;
  let json = null;
  let bin = null;
  while (offset < view.byteLength) {
    const length = view.getUint32(offset, true);
    const type = view.getUint32(offset + 4, true);
    const start = offset + 8;
    if (type === JSON_CHUNK) json = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, start, length)));
    else if (type === BIN_CHUNK) bin = buffer.slice(start, start + length);
    offset = start + length;
  }
  if (!json || !bin) throw new Error("GLB without JSON or binary chunk");
  const accessor = (index) => {
    const acc = json.accessors[index];
    const bv = json.bufferViews[acc.bufferView];
    const comps = { SCALAR: 1, VEC2: 2, VEC3: 3, VEC4: 4 }[acc.type];
    const Type = acc.componentType === 5126 ? Float32Array : Uint8Array;
    return new Type(bin, (bv.byteOffset || 0) + (acc.byteOffset || 0), acc.count * comps);
  };
  const frames = [];
  let colors = null;
  for (const node of json.nodes) {
    if (node.mesh === undefined) continue;
    const prim = json.meshes[node.mesh].primitives[0];
    frames.push(accessor(prim.attributes.POSITION));
    if (!colors && prim.attributes.COLOR_0 !== undefined) colors = accessor(prim.attributes.COLOR_0);
  }
  const extras = (json.extras && json.extras.more4d) || {};
  // the input camera's vertical field of view (the scene's intrinsics), for looking through the path camera
  const fovY = json.cameras && json.cameras[0] && json.cameras[0].perspective ? json.cameras[0].perspective.yfov : null;
  return { frames, colors, fps: extras.fps || 8, cameraPath: extras.camera_path || null, fovY,
           count: frames.length ? frames[0].length / 3 : 0 };
}

const VERTEX = `
attribute vec3 position; attribute vec4 color;
uniform mat4 mvp; uniform float pointSize;
varying vec4 vColor;
void main() { gl_Position = mvp * vec4(position, 1.0); gl_PointSize = pointSize; vColor = color; }`;
const FRAGMENT = `
precision mediump float; varying vec4 vColor;
void main() { gl_FragColor = vec4(vColor.rgb, 1.0); }`;

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
  return shader;
}

function perspective(fovy, aspect, near, far) {
  const f = 1 / Math.tan(fovy / 2);
  const nf = 1 / (near - far);
  return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0];
}

function multiply(a, b) {
  const out = new Array(16).fill(0);
  for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) for (let k = 0; k < 4; k++) out[c * 4 + r] += a[k * 4 + r] * b[c * 4 + k];
  return out;
}

function lookAt(eye, target, up) {
  const sub = (p, q) => [p[0] - q[0], p[1] - q[1], p[2] - q[2]];
  const norm = (v) => { const l = Math.hypot(...v) || 1; return v.map((x) => x / l); };
  const cross = (p, q) => [p[1] * q[2] - p[2] * q[1], p[2] * q[0] - p[0] * q[2], p[0] * q[1] - p[1] * q[0]];
  const dot = (p, q) => p[0] * q[0] + p[1] * q[1] + p[2] * q[2];
  const z = norm(sub(eye, target));
  const x = norm(cross(up, z));
  const y = cross(z, x);
  return [x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0, -dot(x, eye), -dot(y, eye), -dot(z, eye), 1];
}

// glTF axes (the viewer's) from OpenCV axes (the scene's and the camera path's): (x, -y, -z)
const cvToGl = (p) => [p[0], -p[1], -p[2]];

// A row-major 4x4 OpenCV camera-to-world matrix as {centre, axes: [right, down, forward]} in glTF axes.
export function poseInGl(m) {
  return {
    centre: cvToGl([m[3], m[7], m[11]]),
    axes: [0, 1, 2].map((c) => cvToGl([m[c], m[4 + c], m[8 + c]])),
  };
}

// Column-major view matrix (world -> camera, glTF camera: x right, y up, looking down -z) of a path pose.
export function poseViewMatrix(m) {
  const { centre, axes } = poseInGl(m);
  const x = axes[0];
  const y = axes[1].map((v) => -v); // OpenCV y points down
  const z = axes[2].map((v) => -v); // OpenCV z looks forward; GL looks down -z
  const dot = (p, q) => p[0] * q[0] + p[1] * q[1] + p[2] * q[2];
  return [x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0, -dot(x, centre), -dot(y, centre), -dot(z, centre), 1];
}

export class Viewer4D {
  constructor(canvas, options = {}) {
    this.canvas = canvas;
    const gl = canvas.getContext("webgl", { preserveDrawingBuffer: true, antialias: true });
    if (!gl) throw new Error("WebGL is not available");
    this.gl = gl;
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    this.program = program;
    this.loc = {
      position: gl.getAttribLocation(program, "position"),
      color: gl.getAttribLocation(program, "color"),
      mvp: gl.getUniformLocation(program, "mvp"),
      pointSize: gl.getUniformLocation(program, "pointSize"),
    };
    this.pointSize = options.pointSize || 2;
    this.background = options.background || [0.08, 0.09, 0.12];
    this.frame = 0;
    this.playing = false;
    this.data = null;
    this.yaw = 0;
    this.pitch = 0;
    this.distance = 1;
    this.target = [0, 0, -1];
    this.lookThrough = false;
    this.frustumCount = 5;
    this.lineBuffer = gl.createBuffer();
    this.handles = []; // keyframe positions (glTF axes, scene units) shown as draggable points
    this.activeHandle = -1;
    this.handleBuffer = gl.createBuffer();
    this.onhandlemove = null; // (index, OpenCV position in scene units) when a drag ends
    this._bindControls();
  }

  load(data) {
    const gl = this.gl;
    this.data = data;
    this.positionBuffers = data.frames.map((frame) => {
      const buf = gl.createBuffer();
      gl.bindBuffer(gl.ARRAY_BUFFER, buf);
      gl.bufferData(gl.ARRAY_BUFFER, frame, gl.STATIC_DRAW);
      return buf;
    });
    this.colorBuffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, this.colorBuffer);
    const colors = data.colors || new Uint8Array(data.count * 4).fill(255);
    gl.bufferData(gl.ARRAY_BUFFER, colors, gl.STATIC_DRAW);
    this.colorSize = colors.length / data.count;
    this.pathBuffer = null;
    if (data.cameraPath && data.cameraPath.length > 1) {
      // camera centres (OpenCV) drawn in the viewer's glTF axes: (x, -y, -z)
      const pts = new Float32Array(data.cameraPath.flatMap((m) => [m[3], -m[7], -m[11]]));
      this.pathBuffer = gl.createBuffer();
      gl.bindBuffer(gl.ARRAY_BUFFER, this.pathBuffer);
      gl.bufferData(gl.ARRAY_BUFFER, pts, gl.STATIC_DRAW);
      this.pathCount = data.cameraPath.length;
    }
    this._frameScene(data.frames[0]);
    this._depth = null;
    this.setFrame(0);
  }

  // Median frame-0 depth (OpenCV z > 0; the lower median, as Scene4D.median_depth): the "scene_depth" unit.
  sceneDepth() {
    if (this._depth === null && this.data) {
      const pos = this.data.frames[0];
      const z = [];
      for (let i = 2; i < pos.length; i += 3) if (-pos[i] > 0) z.push(-pos[i]);
      z.sort((a, b) => a - b);
      this._depth = z.length ? z[Math.floor((z.length - 1) / 2)] : 1;
    }
    return this._depth || 1;
  }

  // The camera-path pose shown at the current frame (row-major OpenCV camera-to-world), or null.
  pathPose() {
    const path = this.data && this.data.cameraPath;
    if (!path || !path.length) return null;
    return path[Math.min(this.frame, path.length - 1)];
  }

  setLookThrough(on) {
    this.lookThrough = !!on && !!this.pathPose();
    this.draw();
    return this.lookThrough;
  }

  // Column-major view matrix of what is drawn: the path pose when looking through the camera, else the orbit.
  viewMatrix() {
    const pose = this.lookThrough ? this.pathPose() : null;
    return pose ? poseViewMatrix(pose) : lookAt(this.eye(), this.target, [0, 1, 0]);
  }

  // Eye and target (glTF axes) of what is drawn.
  viewCamera() {
    const pose = this.lookThrough ? this.pathPose() : null;
    if (!pose) return { eye: this.eye(), target: [...this.target] };
    const { centre, axes } = poseInGl(pose);
    const d = this.sceneDepth();
    return { eye: centre, target: centre.map((c, k) => c + d * axes[2][k]) };
  }

  // The current view as a keyframe pose in OpenCV scene coordinates (x right, y down, z forward from the
  // input camera), in scene-depth units when units is "scene_depth".
  viewKeyframe(units = "scene_depth") {
    const { eye, target } = this.viewCamera();
    const s = units === "scene_depth" ? 1 / this.sceneDepth() : 1;
    const cv = (p) => cvToGl(p).map((v) => v * s);
    return { position: cv(eye), look_at: cv(target) };
  }

  // Keyframe handles from OpenCV positions in scene units (metres of the scene file).
  setHandles(positions) {
    this.handles = (positions || []).map((p) => cvToGl(p));
    this.activeHandle = -1;
    this.draw();
  }

  // The view's camera basis (glTF axes) and the tangent of half the vertical field of view.
  _viewBasis() {
    const { eye, target } = this.viewCamera();
    const norm = (v) => { const l = Math.hypot(...v) || 1; return v.map((x) => x / l); };
    const cross = (p, q) => [p[1] * q[2] - p[2] * q[1], p[2] * q[0] - p[0] * q[2], p[0] * q[1] - p[1] * q[0]];
    const forward = norm(target.map((t, k) => t - eye[k]));
    const right = norm(cross(forward, [0, 1, 0]));
    const up = cross(right, forward);
    return { eye, forward, right, up, tan: Math.tan(this.fieldOfView() / 2), aspect: this.canvas.width / Math.max(1, this.canvas.height) };
  }

  // A point (glTF axes) -> CSS pixels of the canvas (x right, y down), or null behind the camera.
  screenOf(p) {
    const { eye, forward, right, up, tan, aspect } = this._viewBasis();
    const d = p.map((v, k) => v - eye[k]);
    const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    const z = dot(d, forward);
    if (z <= 1e-9) return null;
    const rect = this.canvas.getBoundingClientRect();
    const nx = dot(d, right) / (z * tan * aspect);
    const ny = dot(d, up) / (z * tan);
    return [(nx + 1) / 2 * rect.width, (1 - ny) / 2 * rect.height];
  }

  // The handle under CSS pixel (x, y) within `radius` pixels (the nearest), or -1.
  pickHandle(x, y, radius = 10) {
    let best = -1;
    let bestDist = radius;
    this.handles.forEach((h, i) => {
      const s = this.screenOf(h);
      if (!s) return;
      const dist = Math.hypot(s[0] - x, s[1] - y);
      if (dist <= bestDist) { best = i; bestDist = dist; }
    });
    return best;
  }

  // Move handle i so that it lies under CSS pixel (x, y), in the plane through `anchor` (glTF axes; the
  // handle's position when the drag began) facing the view: the handle follows the pointer exactly.
  dragHandle(i, x, y, anchor) {
    const { eye, forward, right, up, tan, aspect } = this._viewBasis();
    const rect = this.canvas.getBoundingClientRect();
    const nx = (2 * x) / Math.max(1, rect.width) - 1;
    const ny = 1 - (2 * y) / Math.max(1, rect.height);
    const dir = forward.map((f, k) => f + nx * tan * aspect * right[k] + ny * tan * up[k]);
    const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    const t = dot(anchor.map((a, k) => a - eye[k]), forward) / dot(dir, forward);
    this.handles[i] = eye.map((e, k) => e + t * dir[k]);
    this.draw();
    return cvToGl(this.handles[i]); // (x, -y, -z) is its own inverse: OpenCV axes
  }

  // Line pyramids (apex at the centre) at a few path poses and at the current one, in glTF axes.
  frustumLines() {
    const path = this.data && this.data.cameraPath;
    if (!path || !path.length) return new Float32Array(0);
    const n = path.length;
    const picks = new Set();
    const k = Math.max(1, Math.min(this.frustumCount, n));
    for (let i = 0; i < k; i++) picks.add(k > 1 ? Math.round((i * (n - 1)) / (k - 1)) : 0);
    const current = Math.min(this.frame, n - 1);
    if (this.lookThrough) picks.delete(current); else picks.add(current);
    const s = 0.08 * this.sceneDepth();
    const out = [];
    for (const i of picks) {
      const { centre, axes } = poseInGl(path[i]);
      const at = (a, b, c) => centre.map((v, j) => v + s * (a * axes[0][j] + b * axes[1][j] + c * axes[2][j]));
      const corners = [at(-0.6, -0.45, 1), at(0.6, -0.45, 1), at(0.6, 0.45, 1), at(-0.6, 0.45, 1)];
      for (let j = 0; j < 4; j++) out.push(...centre, ...corners[j], ...corners[j], ...corners[(j + 1) % 4]);
      out.push(...at(-0.2, -0.45, 1), ...at(0, -0.7, 1), ...at(0, -0.7, 1), ...at(0.2, -0.45, 1)); // "up" tick
    }
    return new Float32Array(out);
  }

  _frameScene(positions) {
    let min = [Infinity, Infinity, Infinity];
    let max = [-Infinity, -Infinity, -Infinity];
    for (let i = 0; i < positions.length; i += 3) {
      for (let k = 0; k < 3; k++) {
        const v = positions[i + k];
        if (Number.isFinite(v)) { min[k] = Math.min(min[k], v); max[k] = Math.max(max[k], v); }
      }
    }
    this.target = [(min[0] + max[0]) / 2, (min[1] + max[1]) / 2, (min[2] + max[2]) / 2];
    // start where the input camera was: at the origin, looking down -z
    this.distance = Math.hypot(...this.target) || 1;
    this.yaw = 0;
    this.pitch = 0;
  }

  setFrame(index) {
    if (!this.data) return;
    const n = this.data.frames.length;
    this.frame = ((index % n) + n) % n;
    this.draw();
    if (this.onframe) this.onframe(this.frame);
  }

  play() {
    if (!this.data || this.playing) return;
    this.playing = true;
    let last = performance.now();
    const step = (now) => {
      if (!this.playing) return;
      if (now - last >= 1000 / this.data.fps) { last = now; this.setFrame(this.frame + 1); }
      this._raf = requestAnimationFrame(step);
    };
    this._raf = requestAnimationFrame(step);
  }

  pause() {
    this.playing = false;
    if (this._raf) cancelAnimationFrame(this._raf);
  }

  // The orbit camera's eye (glTF axes).
  eye() {
    const cp = Math.cos(this.pitch);
    return [
      this.target[0] - this.distance * cp * Math.sin(this.yaw),
      this.target[1] + this.distance * Math.sin(this.pitch),
      this.target[2] + this.distance * cp * Math.cos(this.yaw),
    ];
  }

  draw() {
    const gl = this.gl;
    const { width, height } = this.canvas;
    gl.viewport(0, 0, width, height);
    gl.clearColor(...this.background, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    if (!this.data) return;
    gl.enable(gl.DEPTH_TEST);
    gl.useProgram(this.program);
    const scale = this.lookThrough ? this.sceneDepth() : this.distance;
    const proj = perspective(this.fieldOfView(), width / Math.max(1, height), 0.01 * scale, 100 * scale);
    const view = this.viewMatrix();
    gl.uniformMatrix4fv(this.loc.mvp, false, new Float32Array(multiply(proj, view)));
    gl.uniform1f(this.loc.pointSize, this.pointSize);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.positionBuffers[this.frame]);
    gl.enableVertexAttribArray(this.loc.position);
    gl.vertexAttribPointer(this.loc.position, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.colorBuffer);
    gl.enableVertexAttribArray(this.loc.color);
    gl.vertexAttribPointer(this.loc.color, this.colorSize, gl.UNSIGNED_BYTE, true, 0, 0);
    gl.drawArrays(gl.POINTS, 0, this.data.count);
    if (this.pathBuffer) {
      gl.disableVertexAttribArray(this.loc.color);
      gl.vertexAttrib4f(this.loc.color, 1.0, 0.75, 0.2, 1.0);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.pathBuffer);
      gl.vertexAttribPointer(this.loc.position, 3, gl.FLOAT, false, 0, 0);
      gl.drawArrays(gl.LINE_STRIP, 0, this.pathCount);
      gl.uniform1f(this.loc.pointSize, this.pointSize * 3);
      gl.drawArrays(gl.POINTS, Math.min(this.frame, this.pathCount - 1), 1);
    }
    if (this.handles.length && !this.lookThrough) {
      const pts = new Float32Array(this.handles.flat());
      gl.disableVertexAttribArray(this.loc.color);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.handleBuffer);
      gl.bufferData(gl.ARRAY_BUFFER, pts, gl.DYNAMIC_DRAW);
      gl.vertexAttribPointer(this.loc.position, 3, gl.FLOAT, false, 0, 0);
      gl.uniform1f(this.loc.pointSize, Math.max(9, this.pointSize * 4));
      gl.disable(gl.DEPTH_TEST); // handles stay visible and grabbable behind the points
      this.handles.forEach((_, i) => {
        if (i === this.activeHandle) gl.vertexAttrib4f(this.loc.color, 1.0, 1.0, 1.0, 1.0);
        else gl.vertexAttrib4f(this.loc.color, 1.0, 0.3, 0.8, 1.0);
        gl.drawArrays(gl.POINTS, i, 1);
      });
      gl.enable(gl.DEPTH_TEST);
    }
    const lines = this.frustumLines();
    if (lines.length) {
      gl.disableVertexAttribArray(this.loc.color);
      gl.vertexAttrib4f(this.loc.color, 0.55, 0.85, 1.0, 1.0);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.lineBuffer);
      gl.bufferData(gl.ARRAY_BUFFER, lines, gl.DYNAMIC_DRAW);
      gl.vertexAttribPointer(this.loc.position, 3, gl.FLOAT, false, 0, 0);
      gl.drawArrays(gl.LINES, 0, lines.length / 3);
    }
  }

  // vertical field of view: the scene camera's when looking through the path camera (so the view
  // matches the render), a fixed 60 degrees for orbiting
  fieldOfView() {
    return this.lookThrough && this.data && this.data.fovY ? this.data.fovY : Math.PI / 3;
  }

  _bindControls() {
    let dragging = null;
    let handleDrag = null; // {index, anchor, moved}
    const local = (e) => { const r = this.canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    this.canvas.addEventListener("pointerdown", (e) => {
      this.canvas.setPointerCapture(e.pointerId);
      const picked = this.lookThrough ? -1 : this.pickHandle(...local(e));
      if (picked >= 0) {
        handleDrag = { index: picked, anchor: [...this.handles[picked]], moved: null };
        this.activeHandle = picked;
        this.draw();
        return;
      }
      dragging = [e.clientX, e.clientY];
    });
    this.canvas.addEventListener("pointerup", () => {
      dragging = null;
      if (handleDrag) {
        const { index, moved } = handleDrag;
        handleDrag = null;
        this.activeHandle = -1;
        this.draw();
        if (moved && this.onhandlemove) this.onhandlemove(index, moved);
      }
    });
    this.canvas.addEventListener("pointermove", (e) => {
      if (handleDrag) {
        handleDrag.moved = this.dragHandle(handleDrag.index, ...local(e), handleDrag.anchor);
        return;
      }
      if (!dragging || this.lookThrough) return;
      this.yaw += (e.clientX - dragging[0]) * 0.01;
      this.pitch = Math.max(-1.5, Math.min(1.5, this.pitch + (e.clientY - dragging[1]) * 0.01));
      dragging = [e.clientX, e.clientY];
      this.draw();
    });
    this.canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      if (this.lookThrough) return;
      this.distance *= Math.exp(e.deltaY * 0.001);
      this.draw();
    }, { passive: false });
  }
}

// A self-contained widget: canvas + play/pause + frame slider + frame counter.
export function createViewerElement(options = {}) {
  const root = document.createElement("div");
  root.className = "more4d-viewer";
  root.style.cssText = "display:flex;flex-direction:column;gap:4px;width:100%;";
  const canvas = document.createElement("canvas");
  canvas.width = options.width || 480;
  canvas.height = options.height || 360;
  canvas.style.cssText = "width:100%;background:#15171e;border-radius:4px;cursor:grab;";
  const bar = document.createElement("div");
  bar.style.cssText = "display:flex;gap:6px;align-items:center;";
  const button = document.createElement("button");
  button.textContent = "Play";
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.value = "0";
  slider.style.flex = "1";
  const label = document.createElement("span");
  label.style.cssText = "font:12px monospace;min-width:64px;text-align:right;";
  const tools = document.createElement("div");
  tools.style.cssText = "display:flex;gap:6px;align-items:center;font:12px sans-serif;";
  const through = document.createElement("label");
  const throughBox = document.createElement("input");
  throughBox.type = "checkbox";
  throughBox.dataset.action = "look-through";
  through.append(throughBox, " look through camera");
  const addKey = document.createElement("button");
  addKey.textContent = "+ keyframe here";
  addKey.dataset.action = "add-keyframe";
  addKey.title = "Send this view (at this frame) as a keyframe to the camera path editor";
  addKey.style.display = "none"; // shown once someone listens (root.onkeyframe)
  tools.append(through, addKey);
  bar.append(button, slider, label);
  root.append(canvas, bar, tools);
  const viewer = new Viewer4D(canvas, options);
  viewer.onframe = (f) => {
    slider.value = String(f);
    label.textContent = `${f + 1}/${viewer.data.frames.length}`;
  };
  button.addEventListener("click", () => {
    if (viewer.playing) { viewer.pause(); button.textContent = "Play"; } else { viewer.play(); button.textContent = "Pause"; }
  });
  slider.addEventListener("input", () => { viewer.pause(); button.textContent = "Play"; viewer.setFrame(Number(slider.value)); });
  throughBox.addEventListener("change", () => { throughBox.checked = viewer.setLookThrough(throughBox.checked); });
  root.viewer = viewer;
  // root.onkeyframe(request): request = {frame, frames, poseIn(units)}; see insertViewKeyframe in the editor
  let listener = null;
  Object.defineProperty(root, "onkeyframe", {
    get: () => listener,
    set: (fn) => { listener = fn; addKey.style.display = fn ? "" : "none"; },
  });
  root.keyframeRequest = () => ({
    frame: viewer.frame,
    frames: viewer.data ? viewer.data.frames.length : 1,
    poseIn: (units) => viewer.viewKeyframe(units),
  });
  addKey.addEventListener("click", () => { if (listener && viewer.data) listener(root.keyframeRequest()); });
  // keyframe handles: positions in the Keyframes document's units; a finished drag calls
  // root.onkeyframemove({index, positionIn(units)}) (see setKeyframePosition in the editor)
  const toScene = (units) => (units === undefined || units === "scene_depth" ? viewer.sceneDepth() : 1);
  root.setKeyframeHandles = (positions, units) => {
    const s = toScene(units);
    viewer.setHandles((positions || []).map((p) => p.map((v) => v * s)));
  };
  root.onkeyframemove = null;
  viewer.onhandlemove = (index, position) => {
    if (root.onkeyframemove) root.onkeyframemove({ index, positionIn: (units) => position.map((v) => v / toScene(units)) });
  };
  root.loadBuffer = (buffer) => {
    const data = parseGLB(buffer);
    slider.max = String(Math.max(0, data.frames.length - 1));
    viewer.load(data);
    throughBox.disabled = !data.cameraPath;
    throughBox.checked = viewer.lookThrough;
    return data;
  };
  return root;
}
