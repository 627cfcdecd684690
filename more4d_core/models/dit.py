"""The 4D-STraG transformer: diffusers' Wan2.1 DiT extended as MoRe4D does.

Built from diffusers' Wan modules (rotary embedding, time/text/image condition embedder,
attention, feed-forward); the additions are:

* 64 input channels: noisy trajectory latents | control-image latents | start-image latents
  (zero) | depth latents (``4 * latent_channels`` in general);
* reference-image tokens: a 2x2 conv of the reference latent, prepended to the sequence as one
  extra leading frame (RoPE frame index 0; video frames get 1..T) and dropped after the head;
* MAdaNorm in every block, before self-attention and before the FFN, driven by the Motion
  Perception Module's features with a per-call strength (0 = the plain model, bit for bit);
* (small models with ``object_encoder="conv"``) the object encoder's features of the full-resolution
  image and depth, added to every token of their grid position (``models/object_encoder.py``);
* (small models with ``object_binding="attention"``) what those features find among the caption's
  words, added the same way (``models/object_binding.py``);
* (small models with ``motion_gate="attention"`` or ``"fine"``) a gate judging which positions move at all, which the
  generator applies to the sampled motion (``models/motion_gate.py``); the forward pass does not use it.

Sub-module names follow diffusers (``attn1``, ``ffn.net.0.proj``, ``condition_embedder`` ...)
plus the MoRe4D names of the authors' checkpoint (``ref_conv``, ``feature_adapter``,
``omnimae_extractor``, ``blocks.{i}.spatial_guidance_{self,ffn}``); the key map in
``checkpoints/keymap.py`` converts from the original Wan naming.
"""

from __future__ import annotations

import math

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import (
    WanRotaryPosEmbed,
    WanTimeTextImageEmbedding,
    WanTransformerBlock,
)
from torch import nn

from ..errors import InputError
from .config import STraGConfig
from .madanorm import MAdaNorm
from .motion_encoder import MotionEncoder, feature_adapter, features_to_grid
from .motion_gate import build_motion_gate
from .object_binding import ObjectBinding
from .object_encoder import ObjectEncoder


class MotionModulation:
    """Grid-aligned motion features for one forward pass and how to apply them.

    ``features`` is ``[B, S, F]`` for the ``S = h * w`` token-grid positions; every frame of the
    token sequence sees the same spatial features. With ``alignment="reference"`` the last video
    frame is left unmodulated, reproducing the authors' layout (their features were padded at the
    end of a sequence that starts with the reference frame).
    """

    def __init__(self, features: torch.Tensor, strength: float, alignment: str, frames: int):
        self.features = features
        self.strength = float(strength)
        self.alignment = alignment
        self.frames = frames  # frames in the token sequence, reference frame included

    def apply(self, module: MAdaNorm, x: torch.Tensor) -> torch.Tensor:
        scale, shift = module.modulation(self.features, self.strength)  # [B, S, dim]
        b, length, dim = x.shape
        grid = x.view(b, self.frames, length // self.frames, dim)
        scale, shift = scale.unsqueeze(1), shift.unsqueeze(1)
        if self.alignment == "reference":
            head = MAdaNorm.apply(grid[:, :-1], scale, shift)
            return torch.cat([head, grid[:, -1:]], dim=1).view(b, length, dim)
        return MAdaNorm.apply(grid, scale, shift).view(b, length, dim)


class STraGBlock(WanTransformerBlock):
    """A Wan block with MAdaNorm after each AdaLN modulation (self-attention and FFN branches)."""

    def __init__(self, cfg: STraGConfig):
        super().__init__(
            cfg.dim,
            cfg.ffn_dim,
            cfg.num_heads,
            "rms_norm_across_heads",
            cfg.cross_attn_norm,
            cfg.eps,
            cfg.dim if cfg.image_dim is not None else None,
        )
        if cfg.use_mpm:
            self.spatial_guidance_self = MAdaNorm(cfg.mpm_feature_dim, cfg.dim)
            self.spatial_guidance_ffn = MAdaNorm(cfg.mpm_feature_dim, cfg.dim)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        motion: MotionModulation | None = None,
    ) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = (
            self.scale_shift_table + temb.float()
        ).chunk(6, dim=1)

        norm = (self.norm1(hidden_states.float()) * (1 + scale_msa) + shift_msa).type_as(hidden_states)
        if motion is not None:
            norm = motion.apply(self.spatial_guidance_self, norm)
        attn_output = self.attn1(norm, None, None, rotary_emb)
        hidden_states = (hidden_states.float() + attn_output * gate_msa).type_as(hidden_states)

        norm = self.norm2(hidden_states.float()).type_as(hidden_states)
        hidden_states = hidden_states + self.attn2(norm, encoder_hidden_states, None, None)

        norm = (self.norm3(hidden_states.float()) * (1 + c_scale_msa) + c_shift_msa).type_as(hidden_states)
        if motion is not None:
            norm = motion.apply(self.spatial_guidance_ffn, norm)
        ff_output = self.ffn(norm)
        return (hidden_states.float() + ff_output.float() * c_gate_msa).type_as(hidden_states)


class STraGTransformer(ModelMixin, ConfigMixin):
    """The trajectory DiT. ``config`` is a :class:`STraGConfig` dict (so diffusers can save/load it)."""

    _supports_gradient_checkpointing = True
    _no_split_modules = ["STraGBlock"]
    _keep_in_fp32_modules = ["time_embedder", "scale_shift_table", "norm1", "norm2", "norm3"]

    @register_to_config
    def __init__(self, stgconfig: dict):
        super().__init__()
        cfg = STraGConfig.from_dict(stgconfig)
        self.cfg = cfg
        self.rope = WanRotaryPosEmbed(cfg.head_dim, cfg.patch_size, cfg.rope_max_seq_len)
        self.patch_embedding = nn.Conv3d(cfg.in_channels, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.condition_embedder = WanTimeTextImageEmbedding(
            dim=cfg.dim,
            time_freq_dim=cfg.freq_dim,
            time_proj_dim=cfg.dim * 6,
            text_embed_dim=cfg.text_dim,
            image_embed_dim=cfg.image_dim,
        )
        self.blocks = nn.ModuleList(STraGBlock(cfg) for _ in range(cfg.num_layers))
        self.norm_out = FP32LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.proj_out = nn.Linear(cfg.dim, cfg.latent_channels * math.prod(cfg.patch_size))
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)
        if cfg.use_reference_tokens:
            self.ref_conv = nn.Conv2d(
                cfg.latent_channels, cfg.dim, kernel_size=cfg.patch_size[1:], stride=cfg.patch_size[1:]
            )
        if cfg.use_mpm:
            self.omnimae_extractor = MotionEncoder(cfg.motion_encoder, trainable=cfg.motion_encoder_trainable)
            self.feature_adapter = feature_adapter(cfg.mpm_feature_dim)
        if cfg.object_encoder != "none":
            self.object_encoder = ObjectEncoder(cfg)
        if cfg.object_binding != "none":
            self.object_binding = ObjectBinding(cfg)
        if cfg.motion_gate != "none":  # read by the generator after sampling, not by the forward pass
            self.motion_gate = build_motion_gate(cfg)
        self.gradient_checkpointing = False

    # -- motion perception ---------------------------------------------------------------------
    def encode_motion(self, image: torch.Tensor) -> torch.Tensor:
        """Adapted motion features ``[B, F, g, g]`` of ``image [B, 3, H, W]`` (0..1)."""
        if not self.cfg.use_mpm:
            raise InputError(f"model {self.cfg.name} has no Motion Perception Module")
        feats = self.omnimae_extractor(image)
        return self.feature_adapter(feats.to(self.feature_adapter[0].weight.dtype))

    def encode_objects(self, planes: torch.Tensor) -> torch.Tensor:
        """Object-encoder features ``[B, width, h, w]`` of ``planes [B, 4, H, W]`` (image in [-1, 1], depth
        condition) on the token grid."""
        if self.cfg.object_encoder == "none":
            raise InputError(f"model {self.cfg.name} has no object encoder")
        return self.object_encoder(planes)

    # -- forward ---------------------------------------------------------------------------------
    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        text: torch.Tensor,
        image_tokens: torch.Tensor | None = None,
        reference_latent: torch.Tensor | None = None,
        motion_features: torch.Tensor | None = None,
        motion_strength: float = 1.0,
        object_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the flow-matching velocity (``noise - x0``).

        Args:
            latents: ``[B, 4C, T, H, W]`` noisy | control | start | depth latents.
            timestep: ``[B]`` in 0..1000.
            text: ``[B, text_len, text_dim]`` text-encoder states (zero-padded).
            image_tokens: ``[B, image_tokens, image_dim]`` CLIP tokens when the config has them.
            reference_latent: ``[B, C, H, W]`` latent of the reference image (tokens prepended).
            motion_features: ``[B, F, g, g]`` from :meth:`encode_motion` (None: no MAdaNorm).
            motion_strength: lambda, the MAdaNorm gate multiplier (0 = the plain model).
            object_features: ``[B, width, h, w]`` from :meth:`encode_objects` (models with an object encoder).

        Returns ``[B, C, T, H, W]``.
        """
        cfg = self.cfg
        b, channels, frames, height, width = latents.shape
        if channels != cfg.in_channels:
            raise InputError(f"the transformer takes {cfg.in_channels} latent channels, got {channels}")
        p_t, p_h, p_w = cfg.patch_size
        if frames % p_t or height % p_h or width % p_w:
            raise InputError(f"latent size {frames}x{height}x{width} is not a multiple of the patch {cfg.patch_size}")
        post_t, post_h, post_w = frames // p_t, height // p_h, width // p_w

        tokens = self.patch_embedding(latents).flatten(2).transpose(1, 2)
        with_ref = cfg.use_reference_tokens and reference_latent is not None
        if with_ref:
            ref = self.ref_conv(reference_latent.to(tokens.dtype)).flatten(2).transpose(1, 2)
            tokens = torch.cat([ref, tokens], dim=1)
        token_frames = post_t + (1 if with_ref else 0)
        if cfg.object_encoder != "none":
            tokens = self._add_objects(tokens, object_features, token_frames, (post_h, post_w))
        if cfg.object_binding != "none":
            found, _ = self.object_binding(object_features.expand(text.shape[0], *object_features.shape[1:]), text)
            tokens = self._add_per_position(tokens, found, token_frames)
        tokens = tokens.contiguous()
        # rotary embedding of the (token_frames x h x w) grid; only the shape of the probe matters
        probe = latents.new_empty((1, 1, 1, 1, 1)).expand(1, 1, token_frames * p_t, height, width)
        rotary_emb = self.rope(probe)

        temb, timestep_proj, context, image_context = self.condition_embedder(timestep, text, image_tokens)
        timestep_proj = timestep_proj.unflatten(1, (6, -1))
        if image_context is not None:
            context = torch.cat([image_context, context], dim=1)
        elif cfg.image_dim is not None:
            raise InputError(f"model {cfg.name} needs CLIP image tokens [B, {cfg.image_tokens}, {cfg.image_dim}]")

        motion = None
        if motion_features is not None and motion_strength != 0.0:
            if not cfg.use_mpm:
                raise InputError(f"model {cfg.name} has no Motion Perception Module; drop the motion conditioning")
            grid = features_to_grid(motion_features, (post_h, post_w)).to(tokens.dtype)
            alignment = cfg.mpm_alignment if with_ref else "all_frames"
            motion = MotionModulation(grid, motion_strength, alignment, token_frames)

        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                tokens = self._gradient_checkpointing_func(block, tokens, context, timestep_proj, rotary_emb, motion)
            else:
                tokens = block(tokens, context, timestep_proj, rotary_emb, motion)

        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        tokens = (self.norm_out(tokens.float()) * (1 + scale) + shift).type_as(tokens)
        tokens = self.proj_out(tokens)
        if with_ref:
            tokens = tokens[:, post_h * post_w :]
        out = tokens.reshape(b, post_t, post_h, post_w, p_t, p_h, p_w, -1)
        out = out.permute(0, 7, 1, 4, 2, 5, 3, 6)
        return out.flatten(6, 7).flatten(4, 5).flatten(2, 3)

    def _add_objects(self, tokens: torch.Tensor, features: torch.Tensor | None, frames: int,
                     grid_hw: tuple[int, int]) -> torch.Tensor:
        """Every frame's tokens plus the object encoder's additions of their grid position."""
        if features is None:
            raise InputError(f"model {self.cfg.name} needs object-encoder features (encode_conditions makes them)")
        if tuple(features.shape[-2:]) != tuple(grid_hw):
            raise InputError(f"object features on a {tuple(features.shape[-2:])} grid do not match the token grid {grid_hw}")
        return self._add_per_position(tokens, self.object_encoder.token_additions(features), frames)

    @staticmethod
    def _add_per_position(tokens: torch.Tensor, add: torch.Tensor, frames: int) -> torch.Tensor:
        """``tokens [B, frames * S, dim]`` plus ``add [B or 1, S, dim]`` in every frame."""
        b, length, dim = tokens.shape
        if add.shape[0] not in (1, b):
            raise InputError(f"object features of batch {add.shape[0]} cannot serve a batch of {b}")
        add = add.to(tokens.dtype)
        return (tokens.view(b, frames, length // frames, dim) + add.unsqueeze(1)).view(b, length, dim)

    # -- bookkeeping -----------------------------------------------------------------------------
    @classmethod
    def from_stgconfig(cls, cfg: STraGConfig) -> STraGTransformer:
        return cls(stgconfig=cfg.to_dict())

    def trainable_parameters(self):
        """Everything but a frozen motion-encoder trunk."""
        return [p for p in self.parameters() if p.requires_grad]
