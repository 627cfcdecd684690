"""Parts of the generator a training run keeps fixed (``--freeze object_encoder,text_encoder``).

A motion gate (``models/motion_gate.py``) is fitted after training to the object encoder's features and the text
encoder's states. A warm start that trains those two parts changes the gate's inputs, so the init model's gate no
longer fits and has to be fitted again (``train.gate_fit``), and each refit moves its decisions (on validation every
refit since December 5 gave a named-object share of 0.78-0.79, against the bundled file's 0.805). With both parts
frozen the gate's inputs are the init model's, bit for bit, and the warm start carries the init model's gate over
unchanged (``loop.train``).
"""

from __future__ import annotations

from torch import nn

# what --freeze can name -> the attribute path of the module from the training objective
FREEZABLE = {
    "object_encoder": ("transformer", "object_encoder"),
    "text_encoder": ("text_encoder",),
    "object_binding": ("transformer", "object_binding"),
    "motion_gate": ("transformer", "motion_gate"),  # not trained by the loss; frozen when carried over
}
GATE_INPUTS = frozenset({"object_encoder", "text_encoder"})  # what a motion gate reads (models/motion_gate.py)


def parse_freeze(spec: str) -> tuple[str, ...]:
    """``"object_encoder,text_encoder"`` -> the parts' names (sorted, unique); ``""`` -> none."""
    names = sorted({part.strip() for part in spec.split(",") if part.strip()})
    unknown = [name for name in names if name not in FREEZABLE]
    if unknown:
        raise ValueError(f"--freeze names parts of the model; {', '.join(unknown)} is not one of "
                         f"{', '.join(FREEZABLE)} (comma-separated)")
    return tuple(names)


def freeze_parts(objective: nn.Module, names: tuple[str, ...]) -> int:
    """Stop the gradients of the named parts of ``objective`` (the optimizer and the EMA then skip them); returns
    how many parameters were frozen. A part the model lacks is an error, not a silent no-op."""
    frozen = 0
    for name in names:
        module = objective
        for attr in FREEZABLE[name]:
            module = getattr(module, attr, None)
            if module is None:
                raise ValueError(f"--freeze {name}: this model has no {name} (its config has none)")
        for p in module.parameters():
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen


def keeps_gate_inputs(names: tuple[str, ...]) -> bool:
    """Whether freezing ``names`` leaves a motion gate's inputs as they were."""
    return GATE_INPUTS <= set(names)
