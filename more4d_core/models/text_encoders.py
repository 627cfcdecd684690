"""Text encoders: umT5-XXL from a local folder (the authors' model) or a small built-in word-hash
encoder that needs no download (small configurations; trained with the model).

Both return ``[B, text_len, text_dim]`` with positions past the prompt set to zero, as Wan does
(the zero padding is attended to: the DiT learned with it).
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from .config import TEXT_VOCABULARIES, STraGConfig
from .vocabulary import PromptReading, read_prompt

_WORD = re.compile(r"[a-z0-9]+")


def hash_words(text: str, vocab: int, max_len: int) -> list[int]:
    """Stable word ids in ``1 .. vocab - 1`` (0 is padding): lower-cased alphanumeric words hashed
    with CRC-32, so the same word has the same id in every process and on every machine."""
    return hash_list(_WORD.findall(str(text).lower())[:max_len], vocab)


def hash_list(words: list[str], vocab: int) -> list[int]:
    return [1 + zlib.crc32(w.encode("utf-8")) % (vocab - 1) for w in words]


def read_open(prompt: str, max_len: int) -> PromptReading:
    """Every alphanumeric word is read (the "open" vocabulary of models trained before v3)."""
    return PromptReading(str(prompt), _WORD.findall(str(prompt).lower()), max_len=max_len)


class WordHashTextEncoder(nn.Module):
    """Word-hash embedding + learned positions + a small Transformer encoder.

    Captions of procedural training data are short and compositional ("the ball slides left"),
    which this captures. With ``words="procedural"`` a prompt is first read into the trained words
    (:mod:`.vocabulary`: synonyms mapped, unknown words dropped and named); with ``"open"`` (models
    trained before that existed) every word is hashed, and words never seen in training hash to
    embeddings that were never trained. Paraphrase-robust text needs umT5.
    """

    def __init__(self, vocab: int, dim: int, max_len: int, layers: int = 2, heads: int = 4, words: str = "open"):
        super().__init__()
        if vocab < 2:
            raise InputError("word-hash vocabulary needs at least 2 entries")
        if words not in TEXT_VOCABULARIES:
            raise InputError(f"text vocabulary must be one of {', '.join(TEXT_VOCABULARIES)}, got {words!r}")
        self.vocab, self.max_len, self.words = vocab, max_len, words
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, max_len, dim))
        nn.init.normal_(self.pos, std=0.02)
        heads = next(h for h in (heads, 4, 2, 1) if dim % h == 0)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def read(self, prompt: str) -> PromptReading:
        """What the encoder reads of ``prompt``: with the "procedural" vocabulary the trained words
        (synonyms mapped, unknown words named, see :mod:`.vocabulary`); with "open" every word."""
        if self.words == "procedural":
            return read_prompt(prompt, self.max_len)
        return read_open(prompt, self.max_len)

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        ids = torch.zeros(len(prompts), self.max_len, dtype=torch.long)
        for i, p in enumerate(prompts):
            words = hash_list(self.read(p).kept, self.vocab)
            if words:
                ids[i, : len(words)] = torch.tensor(words, dtype=torch.long)
        return ids

    def forward(self, prompts: list[str]) -> torch.Tensor:
        ids = self.tokenize(prompts).to(self.pos.device)
        pad = ids == 0
        x = self.embed(ids) + self.pos
        all_pad = pad.all(dim=1)
        # an empty prompt attends to nothing: give it one visible (zero) slot, then zero the output
        key_mask = pad.clone()
        key_mask[all_pad, 0] = False
        x = self.norm(self.encoder(x, src_key_padding_mask=key_mask))
        return x.masked_fill(pad.unsqueeze(-1), 0.0)


class UMT5TextEncoder(nn.Module):
    """umT5-XXL (transformers ``UMT5EncoderModel``) + its tokenizer, from a local folder or file.

    ``source`` holds either ``text_encoder/`` and ``tokenizer/`` sub-folders (the diffusers layout
    of the Wan repositories), the model and tokenizer files directly, or is one of ComfyUI's
    ``umt5_xxl_*.safetensors`` files (bf16 or fp8_scaled, tokenizer inside; see
    :mod:`..checkpoints.comfy_files`). ``fp8``: float8 block layers (quantized while loading, or
    kept from an fp8_scaled file).
    """

    def __init__(self, source: str | Path, max_len: int = 512, dtype: torch.dtype = torch.bfloat16, *, fp8: bool = False):
        super().__init__()
        from ..checkpoints.comfy_files import is_comfy_umt5, load_umt5_file
        from .fp8 import in_umt5_blocks, quantize_linears

        source = Path(source)
        self.max_len = max_len
        self.tokenizer = None
        if source.is_file():
            if not is_comfy_umt5(source):
                raise FileNotFoundError(f"{source} is not a umT5 encoder file (ComfyUI's umt5_xxl_*.safetensors)")
            self.model, self.tokens = load_umt5_file(source, dtype=dtype, fp8=fp8, max_len=max_len)
            return
        from transformers import AutoTokenizer, UMT5EncoderModel

        model_dir = source / "text_encoder" if (source / "text_encoder").is_dir() else source
        tok_dir = source / "tokenizer" if (source / "tokenizer").is_dir() else source
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"umT5 text encoder not found: expected {model_dir / 'config.json'} and its safetensors weights "
                "(the text_encoder/ and tokenizer/ folders of a diffusers-format Wan2.1 repository), or ComfyUI's "
                "models/text_encoders/umt5_xxl_*.safetensors"
            )
        self.tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        self.model = UMT5EncoderModel.from_pretrained(model_dir, torch_dtype=dtype, use_safetensors=True)
        self.model.requires_grad_(False)
        if fp8:
            quantize_linears(self.model, dtype, where=in_umt5_blocks)
        self.tokens = self._hf_tokens

    def _hf_tokens(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(
            list(prompts), max_length=self.max_len, padding="max_length", truncation=True,
            add_special_tokens=True, return_attention_mask=True, return_tensors="pt",
        )
        return tokens.input_ids, tokens.attention_mask

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> torch.Tensor:
        ids, mask = self.tokens(list(prompts))
        device = next(self.model.parameters()).device
        mask = mask.to(device)
        states = self.model(ids.to(device), mask).last_hidden_state
        return states.masked_fill(~mask.bool().unsqueeze(-1), 0.0)


def build_text_encoder(cfg: STraGConfig, folder: str | Path | None = None, *, fp8: bool = False) -> nn.Module:
    """The text encoder a config uses (``folder`` — or ComfyUI's single file — is required for umT5;
    ``fp8``: float8 umT5 block layers)."""
    if cfg.text_encoder == "word_hash":
        return WordHashTextEncoder(cfg.word_hash_vocab, cfg.text_dim, cfg.text_len, cfg.word_hash_layers,
                                   words=cfg.text_vocabulary)
    if folder is None:
        raise FileNotFoundError(
            f"{cfg.name} uses the umT5-XXL text encoder: give the folder of a diffusers-format Wan2.1 "
            "repository (with text_encoder/ and tokenizer/) under ComfyUI's models/more4d/ or as a path"
        )
    return UMT5TextEncoder(folder, cfg.text_len, fp8=fp8)
