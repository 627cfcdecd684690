"""The pack's nodes on ComfyUI's V3 schema (``comfy_api.latest``: ``io.ComfyNode``, ``io.Schema``).

Each node class here states its inputs once, in the classic ``INPUT_TYPES`` form that the headless
runner and the tests use without ComfyUI. Inside ComfyUI, :func:`v3_nodes` turns every class into an
``io.ComfyNode`` with the same node id, the same input ids in the same order (saved workflows store
widget values by position), the same output types and names, and the hooks in their V3 form:

* widgets become ``io.Int`` / ``io.Float`` / ``io.String`` / ``io.Boolean`` / ``io.Combo`` inputs with
  their ranges, steps, defaults, seed control and tooltips; sockets become the built-in V3 types
  (``io.Image``, ``io.Mask``, ``io.Conditioning``, ``io.ClipVision``) or ``io.Custom`` for ours and
  other packs' (links match on the type string, which stays the same);
* ``hidden`` inputs are requested as ``io.Hidden`` values and read from ``cls.hidden``;
* ``VALIDATE_INPUTS`` becomes ``validate_inputs`` with the same parameter names (ComfyUI passes only
  the inputs a validator names, and skips range checks for a validator taking ``**kwargs``);
  ``IS_CHANGED`` becomes ``fingerprint_inputs``; output nodes are ``is_output_node``;
* ``execute`` runs the node's function; a ``{"ui": ..., "result": ...}`` return becomes
  ``io.NodeOutput(*result, ui=ui)``. Model-file lists are re-read each time ComfyUI asks for the
  schema, as ``INPUT_TYPES`` was.

``io`` is passed in (ComfyUI's ``comfy_api.latest.io``), so this module imports without ComfyUI.
"""

from __future__ import annotations

import inspect
from typing import Any

BUILT_IN = {"IMAGE": "Image", "MASK": "Mask", "CONDITIONING": "Conditioning", "CLIP_VISION": "ClipVision", "VAE": "Vae"}
HIDDEN = {"UNIQUE_ID": "unique_id", "PROMPT": "prompt", "EXTRA_PNGINFO": "extra_pnginfo"}
_NUMBER_OPTIONS = ("default", "min", "max", "step")


def _socket_type(io, kind: str):
    return getattr(io, BUILT_IN[kind]) if kind in BUILT_IN else io.Custom(kind)


def v3_input(io, name: str, spec: tuple, optional: bool):
    """One V1 input declaration as a V3 input."""
    kind = spec[0]
    opts = dict(spec[1]) if len(spec) > 1 else {}
    common = {"optional": optional, "tooltip": opts.get("tooltip")}
    if isinstance(kind, (list, tuple)):
        return io.Combo.Input(name, options=list(kind), default=opts.get("default"), **common)
    if kind == "INT":
        return io.Int.Input(name, control_after_generate=opts.get("control_after_generate"),
                            **{k: opts[k] for k in _NUMBER_OPTIONS if k in opts}, **common)
    if kind == "FLOAT":
        return io.Float.Input(name, round=opts.get("round"), **{k: opts[k] for k in _NUMBER_OPTIONS if k in opts},
                              **common)
    if kind == "STRING":
        return io.String.Input(name, multiline=bool(opts.get("multiline", False)), default=opts.get("default"), **common)
    if kind == "BOOLEAN":
        return io.Boolean.Input(name, default=opts.get("default"), **common)
    return _socket_type(io, kind).Input(name, **common)


def _validator(node_cls):
    """``validate_inputs`` naming the same inputs as the node's ``VALIDATE_INPUTS``."""
    check = node_cls.VALIDATE_INPUTS
    params = list(inspect.signature(check).parameters.values())

    def validate_inputs(cls, *args, **kwargs):
        return check(*args, **kwargs)

    validate_inputs.__signature__ = inspect.Signature(
        [inspect.Parameter("cls", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + params)
    return classmethod(validate_inputs)


def v3_node(io, node_id: str, display_name: str, node_cls: type) -> type:
    """An ``io.ComfyNode`` class for the V1-style ``node_cls`` registered as ``node_id``."""
    hidden = dict(node_cls.INPUT_TYPES().get("hidden", {}))

    def define_schema(cls):
        spec = node_cls.INPUT_TYPES()
        inputs = [v3_input(io, name, decl, section == "optional")
                  for section in ("required", "optional") for name, decl in spec.get(section, {}).items()]
        names = getattr(node_cls, "RETURN_NAMES", None) or node_cls.RETURN_TYPES
        tips = getattr(node_cls, "OUTPUT_TOOLTIPS", None) or (None,) * len(node_cls.RETURN_TYPES)
        outputs = [_socket_type(io, kind).Output(display_name=name, tooltip=tip)
                   for kind, name, tip in zip(node_cls.RETURN_TYPES, names, tips)]
        return io.Schema(
            node_id=node_id, display_name=display_name, category=node_cls.CATEGORY,
            description=getattr(node_cls, "DESCRIPTION", ""), inputs=inputs, outputs=outputs,
            hidden=[getattr(io.Hidden, HIDDEN[v]) for v in hidden.values()],
            is_output_node=bool(getattr(node_cls, "OUTPUT_NODE", False)),
        )

    def execute(cls, **kwargs) -> Any:
        for name, value in hidden.items():
            kwargs[name] = getattr(cls.hidden, HIDDEN[value], None)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}  # unconnected optional inputs: the defaults
        out = getattr(node_cls(), node_cls.FUNCTION)(**kwargs)
        if isinstance(out, dict):
            return io.NodeOutput(*out.get("result", ()), ui=out.get("ui"))
        return io.NodeOutput(*out)

    body: dict[str, Any] = {"define_schema": classmethod(define_schema), "execute": classmethod(execute),
                            "__doc__": getattr(node_cls, "DESCRIPTION", None), "V1_CLASS": node_cls,
                            "DYNAMIC_INPUTS": getattr(node_cls, "DYNAMIC_INPUTS", ())}  # model-file lists
    if hasattr(node_cls, "VALIDATE_INPUTS"):
        body["validate_inputs"] = _validator(node_cls)
    if hasattr(node_cls, "IS_CHANGED"):
        named = set(inspect.signature(node_cls.IS_CHANGED).parameters)
        body["fingerprint_inputs"] = classmethod(lambda cls, **kw: node_cls.IS_CHANGED(
            **{k: v for k, v in kw.items() if k in named}))
    return type(node_cls.__name__, (io.ComfyNode,), body)


def v3_nodes(io, classes: dict[str, type], titles: dict[str, str]) -> dict[str, type]:
    """Every node of ``classes`` (node id -> class) as a V3 node class, under the same id."""
    return {node_id: v3_node(io, node_id, titles[node_id], cls) for node_id, cls in classes.items()}
