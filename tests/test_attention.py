"""Attention kernel choice and compiled blocks."""

import pytest
import torch

from more4d_core.errors import InputError
from more4d_core.models import attention
from more4d_core.models.config import MORE4D_TINY
from more4d_core.models.dit import STraGTransformer


def test_auto_takes_the_fastest_installed_kernel_on_cuda_and_sdpa_elsewhere(monkeypatch):
    monkeypatch.setattr(attention, "_installed", lambda package: package == "flash_attn")
    assert attention.choose_attention("auto", "cuda") == "flash"
    assert attention.choose_attention("auto", "cpu") == "native"
    monkeypatch.setattr(attention, "_installed", lambda package: True)
    assert attention.choose_attention("auto", "cuda") == "sage"
    monkeypatch.setattr(attention, "_installed", lambda package: False)
    assert attention.choose_attention("auto", "cuda") == "native"
    with pytest.raises(InputError, match="sageattention"):
        attention.choose_attention("sage", "cuda")
    with pytest.raises(InputError, match="CUDA"):
        attention.choose_attention("flash", "cpu")
    with pytest.raises(InputError, match="one of"):
        attention.choose_attention("xformers", "cuda")


def _forward(m):
    g = torch.Generator().manual_seed(0)
    c = MORE4D_TINY.latent_channels
    with torch.no_grad():
        return m(torch.randn(1, 4 * c, 2, 4, 4, generator=g), torch.tensor([300.0]),
                 torch.randn(1, MORE4D_TINY.text_len, MORE4D_TINY.text_dim, generator=g),
                 reference_latent=torch.randn(1, c, 4, 4, generator=g))


def test_compiled_blocks_compute_the_same(caplog):
    torch.manual_seed(0)
    model = STraGTransformer.from_stgconfig(MORE4D_TINY).eval()
    expected = _forward(model)
    with caplog.at_level("INFO", logger="more4d"):
        assert attention.set_attention(model, "auto", "cpu") == "native"
    assert "attention: native" in caplog.text
    assert attention.compile_blocks(model, backend="eager") == MORE4D_TINY.num_layers
    assert all(block._compiled_call_impl is not None for block in model.blocks)
    torch.testing.assert_close(_forward(model), expected)
