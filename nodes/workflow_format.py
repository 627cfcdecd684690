"""ComfyUI's UI workflow format (what drag-and-drop loads): building, reading and checking graphs.

A workflow is ``{"nodes": [...], "links": [[id, from_node, from_slot, to_node, to_slot, type]], ...}``;
each node has ``type``, socket ``inputs`` (with the link feeding them), ``outputs`` (with the links
leaving them) and ``widgets_values``: the values of its widget inputs in ``INPUT_TYPES`` order
(required, then optional), where a widget declared with ``control_after_generate`` is followed by
one more value ("fixed", "randomize", ...) and an image-upload combo by the upload widget's value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from more4d_core.errors import InputError

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")  # COMBO: a V3 node's choices, in its "options"
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")


def is_widget(spec: tuple) -> bool:
    kind = spec[0]
    return isinstance(kind, (list, tuple)) or kind in WIDGET_TYPES


def input_specs(node_cls) -> list[tuple[str, tuple, bool]]:
    """``(name, spec, required)`` of every input in declaration order."""
    types = node_cls.INPUT_TYPES()
    out = []
    for section, required in (("required", True), ("optional", False)):
        for name, spec in types.get(section, {}).items():
            out.append((name, spec, required))
    return out


CONTROL = "__control__"  # the "control after generate" widget that follows a seed
UPLOAD = "__upload__"  # the upload button that follows an image combo


def widget_slots(node_cls) -> list[tuple[str, tuple | None]]:
    """The ``widgets_values`` layout: ``(input name, spec)`` per slot; the extra widgets ComfyUI
    adds are named :data:`CONTROL` and :data:`UPLOAD` (spec None)."""
    slots: list[tuple[str, tuple | None]] = []
    for name, spec, _ in input_specs(node_cls):
        if not is_widget(spec):
            continue
        slots.append((name, spec))
        options = spec[1] if len(spec) > 1 else {}
        if options.get("control_after_generate") or (spec[0] == "INT" and name in ("seed", "noise_seed")):
            slots.append((CONTROL, None))
        if options.get("image_upload"):
            slots.append((UPLOAD, None))
    return slots


@dataclass
class GraphNode:
    id: int
    type: str
    widgets: dict[str, Any]
    links: dict[str, tuple[int, int]] = field(default_factory=dict)  # input name -> (from node, from slot)
    mode: int = 0  # 0 = active, 2 = muted, 4 = bypassed


def load_workflow_file(path: str | Path) -> dict:
    """A UI workflow file's JSON, with what is wrong when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"workflow {path} not found; shipped workflows are in the pack's workflows/ folder")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"workflow {path} is not a ComfyUI workflow JSON file ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"workflow {path} is not a ComfyUI workflow (a JSON object), got a {type(doc).__name__}")
    return doc


def read_workflow(doc: dict | str | Path, mappings: dict[str, type]) -> dict[int, GraphNode]:
    """Parse a UI workflow into nodes with named widget values and input links."""
    if not isinstance(doc, dict):
        doc = load_workflow_file(doc)
    links = {link[0]: link for link in doc.get("links", [])}
    nodes: dict[int, GraphNode] = {}
    for raw in doc["nodes"]:
        cls = mappings.get(raw["type"])
        widgets: dict[str, Any] = {}
        if cls is not None:
            values = list(raw.get("widgets_values") or [])
            for (name, spec), value in zip(widget_slots(cls), values):
                if spec is not None:
                    widgets[name] = value
        node = GraphNode(raw["id"], raw["type"], widgets, mode=raw.get("mode", 0))
        for inp in raw.get("inputs", []):
            if inp.get("link") is not None:
                link = links[inp["link"]]
                node.links[inp["name"]] = (link[1], link[2])
        nodes[node.id] = node
    return nodes


def check_workflow(doc: dict, mappings: dict[str, type], external: dict[str, dict] | None = None, *,
                   files: str = "names") -> list[str]:
    """Problems of a workflow against node definitions (empty list = valid): unknown node types,
    links between sockets of different types, wrong widget counts, values out of range or not in
    their combo list. ``external`` describes non-MoRe4D nodes: ``{type: {"outputs": [...types],
    "inputs": {name: type}, "widgets": n}}``. Model-file inputs (a node's ``DYNAMIC_INPUTS``) list
    what is on this machine: ``files="names"`` checks only that they are names, ``files="listed"``
    that each is in the list the node offers now, as ComfyUI does when a workflow is queued."""
    external = external or {}
    problems: list[str] = []
    by_id = {n["id"]: n for n in doc["nodes"]}
    for n in doc["nodes"]:
        t = n["type"]
        if t in mappings:
            cls = mappings[t]
            slots = widget_slots(cls)
            values = list(n.get("widgets_values") or [])
            if len(values) != len(slots):
                problems.append(f"node {n['id']} ({t}): {len(values)} widget values, expected {len(slots)}")
            for (name, _), value in zip(slots, values):
                if name == CONTROL and value not in CONTROL_VALUES:
                    problems.append(f"node {n['id']} ({t}): seed control {value!r} is not one of {CONTROL_VALUES}")
            named = {name: value for (name, spec), value in zip(slots, values) if spec is not None}
            problems += [f"node {n['id']} ({t}).{p}" for p in widget_value_problems(cls, named, files=files)]
            declared = {name: spec[0] for name, spec, _ in input_specs(cls) if not is_widget(spec)}
            for name, spec, required in input_specs(cls):
                linked = any(i["name"] == name and i.get("link") is not None for i in n.get("inputs", []))
                if required and not is_widget(spec) and not linked:
                    problems.append(f"node {n['id']} ({t}): required input '{name}' is not connected")
            n_outputs = list(cls.RETURN_TYPES)
        elif t in external:
            declared = external[t].get("inputs", {})
            n_outputs = external[t].get("outputs", [])
            expected = external[t].get("widgets")
            if expected is not None and len(n.get("widgets_values") or []) != expected:
                problems.append(f"node {n['id']} ({t}): {len(n.get('widgets_values') or [])} widget values, expected {expected}")
        else:
            problems.append(f"node {n['id']}: unknown node type {t!r}")
            continue
        n["_declared_inputs"], n["_outputs"] = declared, n_outputs
    for link in doc.get("links", []):
        link_id, src, src_slot, dst, dst_slot, ltype = link
        if src not in by_id or dst not in by_id:
            problems.append(f"link {link_id}: refers to a missing node")
            continue
        outputs = by_id[src].get("_outputs", [])
        if src_slot >= len(outputs):
            problems.append(f"link {link_id}: node {src} has no output {src_slot}")
            continue
        dst_inputs = by_id[dst].get("inputs", [])
        if dst_slot >= len(dst_inputs):
            problems.append(f"link {link_id}: node {dst} has no input slot {dst_slot}")
            continue
        name = dst_inputs[dst_slot]["name"]
        want = by_id[dst].get("_declared_inputs", {}).get(name)
        have = outputs[src_slot]
        if want is None:
            problems.append(f"link {link_id}: node {dst} has no socket input '{name}'")
        elif want != have and want != "*" and have != "*":
            problems.append(f"link {link_id}: {have} output into '{name}' which takes {want}")
        if ltype != have:
            problems.append(f"link {link_id}: labelled {ltype} but carries {have}")
    for n in doc["nodes"]:
        n.pop("_declared_inputs", None)
        n.pop("_outputs", None)
    return problems


def widget_value_problems(node_cls, values: dict[str, Any], *, files: str = "names") -> list[str]:
    """``"name: problem"`` for each widget value (by input name) of ``node_cls`` outside its range or
    choices. Model-file inputs (the node's ``DYNAMIC_INPUTS``) list what is on this machine:
    ``files="names"`` checks only that they are names, ``files="listed"`` that each is offered now."""
    dynamic = set(getattr(node_cls, "DYNAMIC_INPUTS", ()))
    problems: list[str] = []
    for name, spec in widget_slots(node_cls):
        if spec is None or name not in values:
            continue
        value = values[name]
        if name in dynamic and files != "listed":  # file lists depend on the machine: only the type
            if not isinstance(value, str):
                problems.append(f"{name}: {value!r} is not a file name")
            continue
        problems += [f"{name}: {p}" for p in check_value(spec, value)]
    return problems


def check_value(spec: tuple, value) -> list[str]:
    """What is wrong with a widget ``value`` for its input ``spec`` (empty: nothing)."""
    kind = spec[0]
    opts = spec[1] if len(spec) > 1 else {}
    if kind == "COMBO":  # how ComfyUI describes a V3 combo input: the choices are in its options
        kind = list(opts.get("options", []))
    if isinstance(kind, (list, tuple)):
        shown = ", ".join(map(str, kind[:12])) + (", ..." if len(kind) > 12 else "")
        return [] if value in kind or not kind else [f"{value!r} is not one of the choices ({shown})"]
    if kind == "INT":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{value!r} is not an integer"]
    elif kind == "FLOAT":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return [f"{value!r} is not a number"]
    elif kind == "STRING":
        return [] if isinstance(value, str) else [f"{value!r} is not text"]
    elif kind == "BOOLEAN":
        return [] if isinstance(value, bool) else [f"{value!r} is not true/false"]
    if value != value:  # NaN passes every comparison
        return [f"{value!r} is not a number"]
    if "min" in opts and value < opts["min"] or "max" in opts and value > opts["max"]:
        return [f"{value} is outside {opts.get('min')}..{opts.get('max')}"]
    return []


def build_workflow(nodes: list[dict], mappings: dict[str, type], external: dict[str, dict] | None = None) -> dict:
    """A UI workflow from compact node descriptions::

        {"id": 3, "type": "More4DRender", "pos": [x, y], "widgets": {...overrides...},
         "inputs": {"scene": (2, 0), ...}}   # input name -> (source node id, output slot)

    Widget values default to each input's declared default; sockets are typed from the node
    definitions (``external`` describes non-MoRe4D nodes as in :func:`check_workflow`).
    """
    external = external or {}
    links: list[list] = []
    out_nodes = []
    outputs_of: dict[int, list[str]] = {}
    names_of: dict[int, list[str]] = {}
    for spec in nodes:
        t = spec["type"]
        if t in mappings:
            cls = mappings[t]
            outputs_of[spec["id"]] = list(cls.RETURN_TYPES)
            names_of[spec["id"]] = list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES))
        else:
            outputs_of[spec["id"]] = list(external[t]["outputs"])
            names_of[spec["id"]] = list(external[t].get("output_names", external[t]["outputs"]))
    link_id = 0
    order = 0
    for spec in nodes:
        t = spec["type"]
        inputs, widgets = [], []
        if t in mappings:
            cls = mappings[t]
            socket_inputs = [(n, s[0]) for n, s, _ in input_specs(cls) if not is_widget(s)]
            overrides = dict(spec.get("widgets", {}))
            for name, wspec in widget_slots(cls):
                if wspec is None:
                    widgets.append(overrides.pop(name, "fixed" if name == CONTROL else "image"))
                    continue
                default = wspec[1].get("default") if len(wspec) > 1 else None
                if default is None and isinstance(wspec[0], (list, tuple)):
                    default = wspec[0][0] if wspec[0] else ""
                widgets.append(overrides.pop(name, default))
            if overrides:
                raise KeyError(f"{t}: unknown widgets {sorted(overrides)}")
        else:
            socket_inputs = list(external[t].get("inputs", {}).items())
            widgets = list(spec.get("widgets_values", []))
        unknown = set(spec.get("inputs", {})) - {name for name, _ in socket_inputs}
        if unknown:
            raise KeyError(f"{t}: no socket inputs named {sorted(unknown)}")
        for name, stype in socket_inputs:
            link = None
            if name in spec.get("inputs", {}):
                link_id += 1
                src, slot = spec["inputs"][name]
                links.append([link_id, src, slot, spec["id"], len(inputs), outputs_of[src][slot]])
                link = link_id
            inputs.append({"name": name, "type": stype, "link": link})
        out_nodes.append({
            "id": spec["id"], "type": t, "pos": list(spec.get("pos", [0, 0])), "size": list(spec.get("size", [320, 160])),
            "flags": {}, "order": order, "mode": 0, "inputs": inputs,
            "outputs": [{"name": nm, "type": ty, "links": [], "slot_index": i}
                        for i, (nm, ty) in enumerate(zip(names_of[spec["id"]], outputs_of[spec["id"]]))],
            "properties": {"Node name for S&R": t}, "widgets_values": widgets,
        })
        if "title" in spec:
            out_nodes[-1]["title"] = spec["title"]
        order += 1
    by_id = {n["id"]: n for n in out_nodes}
    for link in links:
        by_id[link[1]]["outputs"][link[2]]["links"].append(link[0])
    return {
        "last_node_id": max(n["id"] for n in out_nodes), "last_link_id": link_id, "nodes": out_nodes, "links": links,
        "groups": [], "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}}, "version": 0.4,
    }
