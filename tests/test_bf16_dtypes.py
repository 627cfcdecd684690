"""A bf16 load of the 14B-layout transformers runs with one dtype per matrix product and normalization.

CUDA kernels reject mixed operands (``expected scalar type BFloat16 but found Float``) where the CPU
kernels accept them, so the CPU suite checks the operands itself: the loader keeps the modules named in
``_keep_in_fp32_modules`` in float32, and every module that matches must cast its input. Found on an
H200: the motion encoder's ``norm1`` / ``norm2`` matched the rule and received bf16 activations.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from more4d_core.checkpoints.apply import load_into
from more4d_core.checkpoints.transformer_loading import rebuild_buffers, rebuild_rope
from more4d_core.memory.estimate import strag_forward, vism_forward
from more4d_core.models.config import MORE4D_TINY
from more4d_core.models.dit import STraGTransformer
from more4d_core.models.fp8 import in_blocks, quantize_linears

_ONE_DTYPE = {F.layer_norm, F.group_norm, F.linear, F.conv1d, F.conv2d, F.conv3d, torch.matmul, torch.bmm,
              torch.baddbmm, torch.addmm, F.scaled_dot_product_attention}


class OneDtypeOperands(TorchFunctionMode):
    """Raises where a product or normalization gets floating operands of two dtypes (as CUDA does)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _ONE_DTYPE:
            dtypes = {a.dtype for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor) and a.is_floating_point()}
            if len(dtypes) > 1:
                raise RuntimeError(f"{func.__name__} got operands of {sorted(map(str, dtypes))}")
        return func(*args, **kwargs)


def _bf16_loaded(build, rebuild) -> torch.nn.Module:
    """Random float32 weights of ``build()`` loaded in bf16 into a meta skeleton, as the checkpoint loaders do
    (their keep rule and their rebuild of the non-persistent buffers)."""
    torch.manual_seed(0)
    state = build().state_dict()
    with torch.device("meta"):
        model = build()
    load_into(model, state.items(), source="test", dtype=torch.bfloat16,
              keep_fp32=model._keep_in_fp32_modules or (), rebuild=rebuild)
    assert not any(p.is_meta for p in model.parameters())
    return model.eval()


def _strag():
    # the 14B configuration's switches (motion encoder, CLIP image tokens, reference tokens) at toy width
    cfg = MORE4D_TINY.replace(num_layers=2, image_dim=24, image_tokens=5, text_len=512, text_dim=16)
    assert cfg.use_mpm and cfg.use_reference_tokens
    return _bf16_loaded(lambda: STraGTransformer.from_stgconfig(cfg), rebuild_buffers)


def test_the_checker_sees_mixed_operands():
    with OneDtypeOperands(), pytest.raises(RuntimeError, match="layer_norm"):
        F.layer_norm(torch.zeros(2, 4, dtype=torch.bfloat16), (4,), torch.ones(4))


@pytest.mark.parametrize("weights", ["bf16", "fp8"])
def test_strag_in_bf16_has_one_dtype_per_operation(weights):
    net = _strag()
    kept = [n for n, p in net.named_parameters() if p.dtype == torch.float32]
    assert any(".norm1." in n for n in kept if n.startswith("omnimae_extractor"))  # the case that failed on CUDA
    if weights == "fp8":
        quantize_linears(net, torch.bfloat16, where=in_blocks)
    with torch.no_grad(), OneDtypeOperands():
        out = strag_forward(net, 2, (9, 32, 32), torch.bfloat16, "cpu")
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_vism_in_bf16_has_one_dtype_per_operation():
    from diffusers import WanTransformer3DModel

    net = _bf16_loaded(lambda: WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=36, out_channels=16,
        text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2, image_dim=24, added_kv_proj_dim=16), rebuild_rope)
    with torch.no_grad(), OneDtypeOperands():
        out = vism_forward(net, 1, (5, 32, 32), torch.bfloat16, "cpu")
    assert torch.isfinite(out.float()).all()


def test_the_float32_rule_matches_whole_module_names_only():
    # the rule diffusers' _keep_in_fp32_modules states: a tensor stays float32 where one part of its dotted name is a
    # listed module name; a longer name that merely starts with one (norm10, norm_out) is not that module
    from more4d_core.checkpoints.apply import kept_in_fp32

    keep = ["time_embedder", "norm1", "scale_shift_table"]
    assert kept_in_fp32("blocks.3.norm1.weight", keep)
    assert kept_in_fp32("condition_embedder.time_embedder.linear_1.bias", keep)
    assert kept_in_fp32("scale_shift_table", keep)
    assert not kept_in_fp32("blocks.3.norm10.weight", keep)
    assert not kept_in_fp32("norm_out.weight", keep)
    assert not kept_in_fp32("blocks.3.attn1.to_q.weight", keep)
    assert not kept_in_fp32("blocks.3.norm1.weight", ())
