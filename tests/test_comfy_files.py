"""ComfyUI's single-file Wan components (umT5 bf16 and fp8_scaled with the tokenizer inside, CLIP
vision, Wan VAE): tiny files in ComfyUI's layout load and compute what transformers / diffusers
compute from the same weights."""

import io

import pytest
import torch
from safetensors.torch import save_file

from more4d_core.checkpoints.comfy_files import load_clip_vision_file, load_umt5_file
from more4d_core.errors import FormatError
from more4d_core.models.fp8 import FP8Linear, quantize
from more4d_core.models.text_encoders import UMT5TextEncoder

SENTENCES = ["the ball slides left", "the cat moves right", "a red box turns", "the camera pans left slowly"] * 20


@pytest.fixture(scope="module")
def spiece() -> bytes:
    sentencepiece = pytest.importorskip("sentencepiece")
    out = io.BytesIO()
    # ids 0 / 1 / 2 = pad / end / unknown, as umT5's vocabulary has them
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(SENTENCES), model_writer=out, vocab_size=30,
                                             pad_id=0, eos_id=1, unk_id=2, bos_id=-1, model_type="unigram")
    return out.getvalue()


@pytest.fixture(scope="module")
def umt5():
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=40, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
                     relative_attention_num_buckets=8, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
                     pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return UMT5EncoderModel(cfg).eval()


def _comfy_state(model, spiece, fp8=False):
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    if fp8:
        for key in [k for k in state if ".block." in k and k.endswith(".weight") and "relative_attention" not in k
                    and "layer_norm" not in k]:
            q, scale = quantize(state[key])
            state[key], state[key[: -len(".weight")] + ".scale_weight"] = q, scale
        state["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    state["spiece_model"] = torch.frombuffer(bytearray(spiece), dtype=torch.uint8)
    return state


def _encode(model, ids, mask):
    with torch.no_grad():
        return model(ids, mask).last_hidden_state.masked_fill(~mask.bool().unsqueeze(-1), 0.0)


def test_umt5_file_computes_what_transformers_computes(tmp_path, umt5, spiece):
    import sentencepiece

    save_file(_comfy_state(umt5, spiece), str(tmp_path / "umt5_xxl_fp16.safetensors"))
    enc = UMT5TextEncoder(tmp_path / "umt5_xxl_fp16.safetensors", max_len=32, dtype=torch.float32)
    sp = sentencepiece.SentencePieceProcessor(model_proto=spiece)
    expected_ids = sp.encode("the ball slides left") + [1]  # end-of-sequence appended, no start token
    ids, mask = enc.tokens(["the ball slides left", ""])
    assert ids[0, : len(expected_ids)].tolist() == expected_ids and (ids[0, len(expected_ids):] == 0).all()
    assert mask[0].sum() == len(expected_ids) and ids[1, 0] == 1 and mask[1].sum() == 1
    torch.testing.assert_close(enc(["the ball slides left", ""]), _encode(umt5, ids, mask))


def test_umt5_fp8_scaled_file_dequantizes_or_stays_float8(tmp_path, umt5, spiece):
    state = _comfy_state(umt5, spiece, fp8=True)
    save_file(state, str(tmp_path / "umt5_xxl_fp8_e4m3fn_scaled.safetensors"))
    # the reference: transformers' model with every scaled weight replaced by weight * scale_weight
    dequantized = {k: (v.float() * state[k[:-7] + ".scale_weight"]) if v.dtype == torch.float8_e4m3fn else v
                   for k, v in state.items() if k not in ("scaled_fp8", "spiece_model") and not k.endswith("scale_weight")}
    reference = type(umt5)(umt5.config).eval()
    reference.load_state_dict({**dequantized, "encoder.embed_tokens.weight": dequantized["shared.weight"]})
    model, tokens = load_umt5_file(tmp_path / "umt5_xxl_fp8_e4m3fn_scaled.safetensors", dtype=torch.float32, max_len=32)
    ids, mask = tokens(["the cat moves right"])
    torch.testing.assert_close(_encode(model, ids, mask), _encode(reference, ids, mask))
    kept, _ = load_umt5_file(tmp_path / "umt5_xxl_fp8_e4m3fn_scaled.safetensors", dtype=torch.float32, fp8=True,
                             max_len=32)
    q = kept.encoder.block[0].layer[0].SelfAttention.q
    assert isinstance(q, FP8Linear) and torch.equal(q.weight, state["encoder.block.0.layer.0.SelfAttention.q.weight"])
    torch.testing.assert_close(_encode(kept, ids, mask), _encode(reference, ids, mask))


def test_a_file_without_its_tokenizer_says_what_to_use(tmp_path, umt5, spiece):
    state = _comfy_state(umt5, spiece)
    del state["spiece_model"]
    save_file(state, str(tmp_path / "t5.safetensors"))
    with pytest.raises(FormatError, match="no tokenizer"):
        load_umt5_file(tmp_path / "t5.safetensors")


def test_clip_vision_file_computes_what_transformers_computes(tmp_path, monkeypatch):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from more4d_core.checkpoints import comfy_files

    monkeypatch.setitem(comfy_files.CLIP_TOWERS, (24, 2), (2, "gelu"))  # a toy tower stands for ViT-H here
    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=24, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=16, projection_dim=8, hidden_act="gelu")
    reference = CLIPVisionModelWithProjection(cfg).eval()
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(tmp_path / "clip_vision_h.safetensors"))
    model = load_clip_vision_file(tmp_path / "clip_vision_h.safetensors")
    pixels = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ours = model(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
        theirs = reference(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
    torch.testing.assert_close(ours, theirs)
    monkeypatch.delitem(comfy_files.CLIP_TOWERS, (24, 2))
    with pytest.raises(FormatError, match="not one we know"):
        load_clip_vision_file(tmp_path / "clip_vision_h.safetensors")
