"""The nodes on ComfyUI's V3 schema (nodes/v3.py), checked against a stand-in of ``comfy_api.latest.io``
with the real constructor keywords: same ids, same inputs in the same order (saved workflows store
widget values by position), same options, outputs, hidden inputs and hooks."""

import inspect
from types import SimpleNamespace

import fake_comfy_io as io
import pytest
import torch

from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, comfy_bridge
from nodes.types import MotionConditioning
from nodes.v3 import v3_nodes

V3 = v3_nodes(io, NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS)


def _v1_inputs(cls):
    spec = cls.INPUT_TYPES()
    return [(name, decl, section == "optional") for section in ("required", "optional")
            for name, decl in spec.get(section, {}).items()]


@pytest.mark.parametrize("node_id", sorted(NODE_CLASS_MAPPINGS))
def test_v3_schema_keeps_ids_inputs_order_options_and_outputs(node_id):
    v1, v3 = NODE_CLASS_MAPPINGS[node_id], V3[node_id]
    assert issubclass(v3, io.ComfyNode) and v3.__name__ == v1.__name__
    schema = v3.define_schema()
    s = schema.kwargs
    assert s["node_id"] == node_id and s["display_name"] == NODE_DISPLAY_NAME_MAPPINGS[node_id]
    assert s["category"] == v1.CATEGORY and s["description"] == v1.DESCRIPTION
    assert s["is_output_node"] == bool(getattr(v1, "OUTPUT_NODE", False))
    old = _v1_inputs(v1)
    assert [i.id for i in s["inputs"]] == [name for name, _, _ in old]  # widget values are stored by position
    for item, (name, decl, optional) in zip(s["inputs"], old):
        kind, opts = decl[0], (decl[1] if len(decl) > 1 else {})
        expected_type = "COMBO" if isinstance(kind, list) else kind
        assert item.io_type == expected_type, name
        assert item.kwargs["optional"] is optional and item.kwargs["tooltip"] == opts.get("tooltip"), name
        if isinstance(kind, list):
            assert item.kwargs["options"] == kind and item.kwargs["default"] == opts.get("default"), name
        for key in ("default", "min", "max", "step", "round", "multiline", "control_after_generate"):
            if key in opts:
                assert item.kwargs[key] == opts[key], (name, key)
    outputs = s["outputs"]
    assert [o.io_type for o in outputs] == list(v1.RETURN_TYPES)
    assert [o.kwargs["display_name"] for o in outputs] == list(getattr(v1, "RETURN_NAMES", v1.RETURN_TYPES))
    hidden = v1.INPUT_TYPES().get("hidden", {})
    assert [h.value for h in s["hidden"]] == list(hidden.values())
    assert v3.DYNAMIC_INPUTS == getattr(v1, "DYNAMIC_INPUTS", ())


def test_validators_name_the_same_inputs():
    """ComfyUI passes a validator only the inputs it names, and skips range checks for one taking
    **kwargs: the V3 validate_inputs must name exactly the classic VALIDATE_INPUTS parameters."""
    checked = [k for k, c in NODE_CLASS_MAPPINGS.items() if hasattr(c, "VALIDATE_INPUTS")]
    assert checked
    for node_id in checked:
        spec = inspect.getfullargspec(V3[node_id].validate_inputs)
        old = inspect.getfullargspec(NODE_CLASS_MAPPINGS[node_id].VALIDATE_INPUTS)
        assert spec.args == old.args and spec.varkw is None, node_id
        assert V3[node_id].validate_inputs() == NODE_CLASS_MAPPINGS[node_id].VALIDATE_INPUTS()


def test_execute_runs_the_node_and_returns_its_outputs_and_ui(tmp_path, monkeypatch):
    out = V3["More4DMotionConditioning"].execute(strength=0.5)
    assert isinstance(out, io.NodeOutput) and out.args == (MotionConditioning(0.5),)
    monkeypatch.setattr(comfy_bridge, "OUTPUT_OVERRIDE", str(tmp_path))
    saved = V3["More4DSaveVideo"].execute(frames=torch.rand(2, 8, 8, 3), filename_prefix="v", fps=8.0)
    assert saved.args == () and saved.ui["text"] == ["v_00001.mp4"] and (tmp_path / "v_00001.mp4").is_file()


def test_hidden_inputs_reach_the_node_and_unconnected_optionals_keep_their_defaults(monkeypatch):
    seen = {}

    class Probe:
        CATEGORY, DESCRIPTION, FUNCTION = "MoRe4D", "probe", "run"
        RETURN_TYPES, RETURN_NAMES, OUTPUT_TOOLTIPS = ("STRING",), ("text",), ("t",)

        @classmethod
        def INPUT_TYPES(cls):  # noqa: N802
            return {"required": {"a": ("INT", {"default": 1, "min": 0, "max": 9, "tooltip": "a"})},
                    "optional": {"b": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 1.0, "tooltip": "b"})},
                    "hidden": {"unique_id": "UNIQUE_ID"}}

        def run(self, a, b=-1.0, unique_id=None):
            seen.update(a=a, b=b, unique_id=unique_id)
            return (f"{a}",)

    node = v3_nodes(io, {"Probe": Probe}, {"Probe": "Probe"})["Probe"]
    monkeypatch.setattr(node, "hidden", SimpleNamespace(unique_id="42"))
    assert node.execute(a=3, b=None).args == ("3",)
    assert seen == {"a": 3, "b": -1.0, "unique_id": "42"}


def test_fingerprint_inputs_is_the_classic_is_changed(tmp_path):
    node = V3["More4DLoadScene"]
    assert node.fingerprint_inputs(scene_file="input/none.npz", other=1) != node.fingerprint_inputs(
        scene_file="input/none.npz", other=1)  # NaN for a missing file: never equal, so it reruns
