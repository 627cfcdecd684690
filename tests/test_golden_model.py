"""Golden regression of the shipped model: the bundled weights, loaded as the runner loads them, give
the stored fingerprint of generated tracks on fixed inputs (tests/golden/regenerate.py explains the
inputs and the tolerances)."""

import json

import pytest
import torch

from more4d_core.weights import DEFAULT_MODEL
from tests.golden.regenerate import GOLDEN, REGENERATE_COMMAND, compare, fingerprint, load_shipped, sha256

ADVICE = f"if deliberate, regenerate with: {REGENERATE_COMMAND}  (from the repository root)"


@pytest.fixture(scope="module")
def expected():
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def shipped():
    return load_shipped()


def _changed(problems: list[str], what: str) -> str:
    shown = "\n  ".join(problems[:12]) + (f"\n  ... and {len(problems) - 12} more" if len(problems) > 12 else "")
    return f"{what}; {ADVICE}\n  {shown}"


def test_shipped_weights_are_the_fingerprinted_file(expected):
    actual = sha256(DEFAULT_MODEL)
    assert actual == expected["weights_sha256"], _changed(
        [f"sha256 {actual} != expected {expected['weights_sha256']}"], f"the shipped weights file {DEFAULT_MODEL.name} changed")


def test_shipped_model_output_matches_the_golden_fingerprint(shipped, expected):
    problems = compare(expected, fingerprint(generator=shipped))
    assert not problems, _changed(problems, "the shipped model's output changed")


def test_the_comparison_notices_one_slightly_perturbed_weight_tensor(shipped, expected):
    weight = shipped.transformer.blocks[3].ffn.net[2].weight
    original = weight.detach().clone()
    generator = torch.Generator().manual_seed(1)
    try:
        with torch.no_grad():  # 1e-3 of the tensor's spread, on one block's output layer
            weight.add_(torch.randn(weight.shape, generator=generator) * weight.std() * 1e-3)
        problems = compare(expected, fingerprint(generator=shipped))
    finally:
        with torch.no_grad():
            weight.copy_(original)
    assert len(problems) >= 10, problems
