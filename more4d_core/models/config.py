"""Configurations of the 4D-STraG trajectory generator: one architecture family, several scales.

A :class:`STraGConfig` fully describes a model (transformer, motion perception module, trajectory
codec, text and image conditioning), is JSON round-trippable and is stored inside our single-file
checkpoints. Named configs:

* ``more4d-14b`` — the authors' configuration (Wan2.1-Fun-V1.1-14B-Control widened to 64 input
  channels, CLIP image tokens, reference-image tokens, OmniMAE ViT-B motion features, the Wan
  video VAE with trajectory adaptors, umT5-XXL text).
* ``more4d-small`` — the CPU configuration of the bundled default model: same blocks, narrow and
  shallow, a temporal-DCT codec with depth-guided decoding instead of the Wan VAE, a built-in
  word-hash text encoder reading its trained words, and a small trainable ViT for motion features.
* ``more4d-tiny`` — for tests: smallest sizes that exercise every code path.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..geometry.normalization import NORMALIZATIONS
from ..sampling.sample_average import MAX_SAMPLE_AVERAGE

# 2: depth_condition added (files of version 1 were all trained with "minmax")
# 3: text_vocabulary and decode_guide added (files of version < 3 read every word and decode bilinearly)
# 4: condition_detail added (files of version < 4 see only the cell means of the image and the depth)
# 5: object_encoder added (files of version < 5 have none)
# 6: object_binding added (files of version < 6 have none)
# 7: motion_gate and motion_gate_threshold added (files of version < 7 have no gate)
# 8: motion_smoothing added (files of version < 8 do not smooth)
# 9: sample_average added (files of version < 9 generate one sample)
# 10: clause_composition added (files of version < 10 sample the whole prompt at once)
# 11: motion_gate "fine" added (a gate on the latent grid; files of version < 11 have "none" or "attention")
# 12: temporal_decoder added (files of version < 12 decode with the cosine basis alone)
# 13: clause_composition "gate_camera" added (object clauses with a camera clause composed too)
# 14: mirror_average added (files of version < 14 draw every sample on the image as it is)
# 15: motion_gate_pixels added (files of version < 15 gate per latent cell)
# 16: rigid_segments added (files of version < 16 keep each moving pixel's motion as decoded)
# 17: rigid_level and object_focus added (files of version < 17 cut segments at depth jumps only and keep every
#     pixel the gate keeps)
# 18: rigid_scale added (files of version < 18 let every segment's fit change its size)
# 19: rigid_clauses and rigid_growth_power added (files of version < 19 let segments span clauses, let every segment
#     change its size where any clause names a growth, and keep a growing segment's fitted size change as it is)
# 20: rigid_growth_limit added (files of version < 20 fit a growing segment under the similarity limit of every other)
# 21: rigid_spin_gain and rigid_spin_limit added (files of version < 21 keep a spinning segment's fitted turn as it is,
#     under the similarity limit of every other)
# 22: rigid_axes added (files of version < 22 keep a segment's fitted translation on every axis)
CONFIG_VERSION = 22
MAX_GROWTH_POWER = 4.0
MAX_SPIN_GAIN = 2.0
# the similarity limit of every rigid segment (sampling.rigid_motion.SIMILARITY_LIMIT; a test keeps them equal): a
# growth clause's segment takes it too unless a file says otherwise
COMMON_SIMILARITY_LIMIT = 0.1
# the options that refine the rigid segments, at the values they take in a file without segments (each option's check
# below allows only this value there): the defaults tool resets them when it turns the segments off, the evaluation
# records them so for a run without segments
RIGID_OFF = {"rigid_level": 0.0, "rigid_scale": "any", "rigid_clauses": False, "rigid_growth_power": 1.0,
             "rigid_growth_limit": COMMON_SIMILARITY_LIMIT, "rigid_spin_gain": 1.0,
             "rigid_spin_limit": COMMON_SIMILARITY_LIMIT, "rigid_axes": False}
TEXT_VOCABULARIES = ("open", "procedural")
DECODE_GUIDES = ("none", "depth")
DEPTH_CONDITIONS = ("minmax", "max_ratio")
CONDITION_DETAILS = ("none", "subcell")
OBJECT_ENCODERS = ("none", "conv")
OBJECT_BINDINGS = ("none", "attention")
RIGID_SCALES = ("any", "prompted")
MOTION_GATES = ("none", "attention", "fine")
CLAUSE_COMPOSITIONS = ("none", "gate", "gate_camera")
TEMPORAL_DECODERS = ("basis", "learned")


MAX_GENERATED_FRAMES = 257  # the Generate node's widget maximum; memory grows with frames x points

@dataclass(frozen=True)
class MotionEncoderConfig:
    """The frozen video-MAE ViT that encodes the input image for the Motion Perception Module."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    tubelet: int = 2
    image_size: int = 224
    pos_frames: int = 8  # frames in the stored sinusoidal position table (OmniMAE: 8 x 14 x 14)
    eps: float = 1e-6
    include_mae_decoder: bool = False  # OmniMAE checkpoints carry an MAE decoder we never run

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class STraGConfig:
    """Architecture and conditioning of a trajectory generator."""

    name: str = "custom"
    # transformer (Wan2.1 family)
    dim: int = 5120
    num_heads: int = 40
    num_layers: int = 40
    ffn_dim: int = 13824
    freq_dim: int = 256
    eps: float = 1e-6
    patch_size: tuple[int, int, int] = (1, 2, 2)
    cross_attn_norm: bool = True
    rope_max_seq_len: int = 1024
    latent_channels: int = 16  # channels of one latent group (noisy / control / start / depth)
    # conditioning
    text_dim: int = 4096
    text_len: int = 512
    image_dim: int | None = 1280  # CLIP ViT-H tokens (None: no image cross-attention)
    image_tokens: int = 257
    use_reference_tokens: bool = True  # 2x2 conv of the reference latent, prepended as one frame
    reference_image: str = "image"  # "image" (ours) or "zero" (what the authors' training saw)
    use_mpm: bool = True
    motion_encoder_trainable: bool = False  # the authors freeze their pretrained OmniMAE
    mpm_alignment: str = "all_frames"  # or "reference": the authors' misaligned layout
    motion_encoder: MotionEncoderConfig = field(default_factory=MotionEncoderConfig)
    # trajectory codec
    codec: str = "wan_vae"  # or "patchify", "dct"
    temporal_compression: int = 4
    dct_coefficients: int = 8
    decode_guide: str = "none"  # dct codec: upsample the decoded field bilinearly ("none") or guided by the frame-0 depth ("depth")
    # dct codec: "basis" draws each trajectory from its cosines alone; "learned" adds what a small network fitted on
    # true tracks reads from them (models.temporal_decoder: kinks such as a bounce's turn at the floor)
    temporal_decoder: str = "basis"
    temporal_decoder_width: int = 256
    spatial_compression: int = 8
    vae_base_dim: int = 96
    vae_z_dim: int = 16
    adaptor_channels: int = 128
    normalization: str = "reference"  # "reference" constants, "intrinsics"-derived factors or "focal" (fx = fy = 1)
    depth_condition: str = "minmax"  # depth map -> [-1, 1]: per-image min-max, or "max_ratio" (2 z / max z - 1)
    # dct codec: the control and depth latents carry only each cell's mean in their first coefficient; "subcell"
    # also puts the luminance and depth of the cell's pixels in the unused channels (sampling.condition_detail)
    condition_detail: str = "none"
    # "conv": a small convolutional encoder of the full-resolution image and depth adds what it sees to every
    # token (models.object_encoder), so tokens can tell the objects' shapes apart; "none": the plain model
    object_encoder: str = "none"
    object_encoder_width: int = 96
    # "attention": the object encoder's features attend over the caption's words and a "nothing" slot; what they
    # find is added to every token of the position (models.object_binding), trained to find the named objects
    object_binding: str = "none"
    object_binding_width: int = 64
    # "attention": the object encoder's features attend over the caption's words and a "still" slot to judge which
    # positions move at all (objects the caption moves, everything when the camera moves; models.motion_gate); the
    # sampled motion of the positions judged still (probability below motion_gate_threshold) is set to zero;
    # "fine": the same judgement on the latent grid, from those features and a small convolution of the image and depth
    motion_gate: str = "none"
    motion_gate_width: int = 64
    motion_gate_threshold: float = 0.5
    # the gate decided per output pixel (sampling.pixel_gate) where every moving pixel is a gated object clause's;
    # False: per latent cell
    motion_gate_pixels: bool = False
    # with the pixel gate: each moving segment's motion replaced by one translation or similarity transform per frame
    # where that explains it (sampling.rigid_motion); False: each pixel's motion as decoded
    rigid_segments: bool = False
    # with rigid segments: the segments also cut where the gate's upsampled probability crosses this level (pixels it
    # is surer of than this apart from those it let move with less); 0 = cut at depth jumps only
    rigid_level: float = 0.0
    # with rigid segments: "any" = a segment's similarity fit may change its size; "prompted" = only where the prompt
    # names a growth ("grows", "shrinks"), else rotation and translation alone (sampling.rigid_motion)
    rigid_scale: str = "any"
    # with rigid segments: the fitted size change of a segment whose clause names a growth raised to this power (the
    # change multiplied in log scale: 2 makes a fitted 1.2x growth 1.44x); 1 = as fitted (sampling.rigid_motion)
    rigid_growth_power: float = 1.0
    # with rigid segments and a prompt of two or more object clauses: True = no segment spans two clauses (each pixel
    # goes to the clause whose gate is surest of it) and a segment changes its size only where its own clause names a
    # growth; False = segments cut at depth jumps alone, and a growth word anywhere lets every segment change its size
    rigid_clauses: bool = False
    # with rigid segments: a segment whose clause names a growth takes its similarity fit where that leaves at most this
    # share of its motion unexplained (every other segment: COMMON_SIMILARITY_LIMIT)
    rigid_growth_limit: float = COMMON_SIMILARITY_LIMIT
    # with rigid segments: the fitted rotation of a segment whose clause names a spin (and no growth) turned this many
    # times as far about its axis; 1 = as fitted (sampling.rigid_motion)
    rigid_spin_gain: float = 1.0
    # with rigid segments: a segment whose clause names a spin takes its rigid fit where that leaves at most this share
    # of its motion unexplained (every other segment: COMMON_SIMILARITY_LIMIT)
    rigid_spin_limit: float = COMMON_SIMILARITY_LIMIT
    # with rigid segments: True = a segment that takes the translation fit and whose clause names one axis of the
    # camera ("left" / "right": x, "up" / "down" / "bounces": y, "toward" / "away": z) keeps only that component of its
    # translation; False = its fitted translation on every axis (sampling.rigid_motion)
    rigid_axes: bool = False
    # with the pixel gate: for each object clause, the pixels of depth segments whose mean gate probability is below
    # this share of the best segment's (and that do not touch it) held still (sampling.object_focus); 0 = off
    object_focus: float = 0.0
    # text encoder
    text_encoder: str = "umt5"  # or "word_hash"
    word_hash_vocab: int = 4096
    word_hash_layers: int = 2
    text_vocabulary: str = "open"  # word-hash words: every word ("open") or the trained words ("procedural", see models.vocabulary)
    # generation defaults
    num_frames: int = 49
    height: int = 368
    width: int = 512
    fps: float = 8.0
    steps: int = 50
    shift: float = 5.0
    guidance_scale: float = 6.0
    still_threshold: float = 0.0  # motion below this (normalized units, ~fraction of the image size) is held still; 0 = off
    motion_smoothing: float = 0.0  # post-processing: motion averaged within surfaces, radius as a share of the image width; 0 = off
    # sampler: the mean of this many samples from successive noises of the seed (sampling.sample_average); 1 = one sample
    sample_average: int = 1
    # sampler: "gate" samples a prompt of two or more object clauses clause by clause and composes them with the
    # motion gate (sampling.clause_composition); "gate_camera" also one or more object clauses with a camera clause;
    # "none" samples the whole prompt at once
    clause_composition: str = "none"
    # sampler: every other averaged sample drawn on the mirrored image and prompt, mirrored back (sampling.mirroring;
    # the dct codec only)
    mirror_average: bool = False

    def __post_init__(self):
        if self.dim % self.num_heads:
            raise InputError(f"dim {self.dim} must be divisible by num_heads {self.num_heads}")
        head_dim = self.dim // self.num_heads
        if head_dim % 2 or head_dim < 6:
            raise InputError(f"head dim {head_dim} must be even and >= 6 (rotary embedding over t, h, w)")
        if self.codec not in ("wan_vae", "patchify", "dct"):
            raise InputError(f"codec must be 'wan_vae', 'patchify' or 'dct', got {self.codec!r}")
        if self.motion_smoothing and self.codec != "dct":
            raise InputError(f"motion_smoothing needs the 'dct' codec's coarse motion grid, got codec {self.codec!r}")
        if isinstance(self.sample_average, bool) or not isinstance(self.sample_average, int) or not (
            1 <= self.sample_average <= MAX_SAMPLE_AVERAGE
        ):
            raise InputError(f"sample_average must be a whole number from 1 to {MAX_SAMPLE_AVERAGE}, got {self.sample_average!r}")
        if self.clause_composition not in CLAUSE_COMPOSITIONS:
            raise InputError(f"clause_composition must be one of {', '.join(CLAUSE_COMPOSITIONS)}, "
                             f"got {self.clause_composition!r}")
        if self.clause_composition != "none" and self.motion_gate == "none":
            raise InputError(f"clause_composition {self.clause_composition!r} composes clauses with the motion gate: "
                             "it needs motion_gate 'attention' or 'fine'")
        if not isinstance(self.motion_gate_pixels, bool) or (self.motion_gate_pixels and (
                self.motion_gate == "none" or self.codec != "dct")):
            raise InputError(f"motion_gate_pixels must be true or false, and true only for a model with a motion gate "
                             f"and the 'dct' codec, got {self.motion_gate_pixels!r} (gate {self.motion_gate!r}, codec "
                             f"{self.codec!r})")
        if not isinstance(self.rigid_segments, bool) or (self.rigid_segments and not self.motion_gate_pixels):
            raise InputError(f"rigid_segments must be true or false, and true only with motion_gate_pixels (the pixel "
                             f"gate's moving pixels are what it fits), got {self.rigid_segments!r} (motion_gate_pixels "
                             f"{self.motion_gate_pixels!r})")
        if isinstance(self.rigid_level, bool) or not isinstance(self.rigid_level, (int, float)) or not (
                self.rigid_level == 0 or (self.rigid_segments and self.motion_gate_threshold < self.rigid_level < 1)):
            raise InputError(f"rigid_level must be 0 (segments cut at depth jumps only) or, with rigid_segments, a "
                             f"probability above the gate threshold {self.motion_gate_threshold} and below 1, got "
                             f"{self.rigid_level!r} (rigid_segments {self.rigid_segments!r})")
        if self.rigid_scale not in RIGID_SCALES or (self.rigid_scale != "any" and not self.rigid_segments):
            raise InputError(f"rigid_scale must be one of {', '.join(RIGID_SCALES)}, and other than 'any' only with "
                             f"rigid_segments, got {self.rigid_scale!r} (rigid_segments {self.rigid_segments!r})")
        if not isinstance(self.rigid_clauses, bool) or (self.rigid_clauses and not self.rigid_segments):
            raise InputError(f"rigid_clauses must be true or false, and true only with rigid_segments, got "
                             f"{self.rigid_clauses!r} (rigid_segments {self.rigid_segments!r})")
        for name in ("rigid_growth_limit", "rigid_spin_limit"):  # a segment's own limit of what its fit leaves
            limit = getattr(self, name)
            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not (
                    limit == COMMON_SIMILARITY_LIMIT or (self.rigid_segments and 0 < limit <= 1)):
                raise InputError(f"{name} must be {COMMON_SIMILARITY_LIMIT:g} (as every segment) or, with "
                                 f"rigid_segments, a share above 0 and at most 1, got {limit!r} (rigid_segments "
                                 f"{self.rigid_segments!r})")
        if not isinstance(self.rigid_axes, bool) or (self.rigid_axes and not self.rigid_segments):
            raise InputError(f"rigid_axes must be true or false, and true only with rigid_segments, got "
                             f"{self.rigid_axes!r} (rigid_segments {self.rigid_segments!r})")
        gain = self.rigid_spin_gain
        if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not (
                gain == 1 or (self.rigid_segments and 0 < gain <= MAX_SPIN_GAIN)):
            raise InputError(f"rigid_spin_gain must be 1 (turns as fitted) or, with rigid_segments, a gain above 0 and "
                             f"at most {MAX_SPIN_GAIN:g}, got {gain!r} (rigid_segments {self.rigid_segments!r})")
        power = self.rigid_growth_power
        if isinstance(power, bool) or not isinstance(power, (int, float)) or not (
                power == 1 or (self.rigid_segments and 0 < power <= MAX_GROWTH_POWER)):
            raise InputError(f"rigid_growth_power must be 1 (growth as fitted) or, with rigid_segments, a power above "
                             f"0 and at most {MAX_GROWTH_POWER:g}, got {power!r} (rigid_segments "
                             f"{self.rigid_segments!r})")
        if isinstance(self.object_focus, bool) or not isinstance(self.object_focus, (int, float)) or not (
                self.object_focus == 0 or (self.motion_gate_pixels and 0 < self.object_focus <= 1)):
            raise InputError(f"object_focus must be 0 (off) or, with motion_gate_pixels, a share of the best segment's "
                             f"gate probability above 0 and at most 1, got {self.object_focus!r} (motion_gate_pixels "
                             f"{self.motion_gate_pixels!r})")
        if not isinstance(self.mirror_average, bool) or (self.mirror_average and self.codec != "dct"):
            raise InputError(f"mirror_average must be true or false, and true only with the 'dct' codec (its latents "
                             f"have a mirror map), got {self.mirror_average!r} with codec {self.codec!r}")
        if self.reference_image not in ("image", "zero"):
            raise InputError(f"reference_image must be 'image' or 'zero', got {self.reference_image!r}")
        if self.mpm_alignment not in ("all_frames", "reference"):
            raise InputError(f"mpm_alignment must be 'all_frames' or 'reference', got {self.mpm_alignment!r}")
        if self.text_encoder not in ("umt5", "word_hash"):
            raise InputError(f"text_encoder must be 'umt5' or 'word_hash', got {self.text_encoder!r}")
        if self.normalization not in NORMALIZATIONS:
            raise InputError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {self.normalization!r}")
        if self.text_vocabulary not in TEXT_VOCABULARIES:
            raise InputError(f"text_vocabulary must be one of {', '.join(TEXT_VOCABULARIES)}, got {self.text_vocabulary!r}")
        if self.decode_guide not in DECODE_GUIDES:
            raise InputError(f"decode_guide must be one of {', '.join(DECODE_GUIDES)}, got {self.decode_guide!r}")
        if self.temporal_decoder not in TEMPORAL_DECODERS:
            raise InputError(f"temporal_decoder must be one of {', '.join(TEMPORAL_DECODERS)}, got {self.temporal_decoder!r}")
        if self.temporal_decoder != "basis" and (self.codec != "dct" or self.temporal_decoder_width < 1):
            raise InputError("temporal_decoder 'learned' refines the dct codec's cosine basis: it needs codec 'dct' and a "
                             f"positive width, got codec {self.codec!r}, width {self.temporal_decoder_width}")
        if self.depth_condition not in DEPTH_CONDITIONS:
            raise InputError(f"depth_condition must be one of {', '.join(DEPTH_CONDITIONS)}, got {self.depth_condition!r}")
        if self.condition_detail not in CONDITION_DETAILS:
            raise InputError(f"condition_detail must be one of {', '.join(CONDITION_DETAILS)}, got {self.condition_detail!r}")
        if self.condition_detail != "none" and (
            self.codec != "dct" or 3 * (self.dct_coefficients - 1) < self.spatial_compression**2
        ):
            raise InputError(
                "condition_detail 'subcell' needs the dct codec with room for the cell's pixels: "
                f"3 x (dct_coefficients - 1) >= spatial_compression^2, got codec {self.codec!r}, "
                f"{self.dct_coefficients} coefficients, compression {self.spatial_compression}"
            )
        if self.object_encoder not in OBJECT_ENCODERS:
            raise InputError(f"object_encoder must be one of {', '.join(OBJECT_ENCODERS)}, got {self.object_encoder!r}")
        stride = self.spatial_compression * self.patch_size[1]
        if self.object_encoder != "none" and (
            self.patch_size[1] != self.patch_size[2] or stride < 2 or stride & (stride - 1) or self.object_encoder_width < 1
        ):
            raise InputError(
                "object_encoder 'conv' needs square patches, a power-of-two pixel stride and a positive width, got "
                f"patch {self.patch_size}, stride {stride}, width {self.object_encoder_width}"
            )
        if self.object_binding not in OBJECT_BINDINGS:
            raise InputError(f"object_binding must be one of {', '.join(OBJECT_BINDINGS)}, got {self.object_binding!r}")
        if self.object_binding != "none" and (self.object_encoder == "none" or self.object_binding_width < 1):
            raise InputError("object_binding 'attention' reads the object encoder's features: it needs object_encoder "
                             f"'conv' and a positive width, got {self.object_encoder!r} and {self.object_binding_width}")
        if self.motion_gate not in MOTION_GATES:
            raise InputError(f"motion_gate must be one of {', '.join(MOTION_GATES)}, got {self.motion_gate!r}")
        if self.motion_gate != "none" and (self.object_encoder == "none" or self.motion_gate_width < 1):
            raise InputError(f"motion_gate {self.motion_gate!r} reads the object encoder's features: it needs "
                             f"object_encoder 'conv' and a positive width, got {self.object_encoder!r} and "
                             f"{self.motion_gate_width}")
        if not (0.0 <= self.motion_gate_threshold < 1.0):
            raise InputError(f"motion_gate_threshold must be in [0, 1), got {self.motion_gate_threshold}")
        if self.image_dim is not None and self.text_len != 512:
            # diffusers' Wan attention splits image and text context assuming 512 text tokens
            raise InputError("configs with CLIP image tokens need text_len = 512")
        if self.codec != "dct" and (self.num_frames - 1) % self.temporal_compression:
            raise InputError(
                f"num_frames - 1 = {self.num_frames - 1} must be a multiple of the temporal compression "
                f"{self.temporal_compression} (e.g. 49 frames for 4x)"
            )

    # -- derived sizes ---------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def mpm_feature_dim(self) -> int:
        return self.motion_encoder.embed_dim

    @property
    def in_channels(self) -> int:
        """Noisy | control | start-image | depth latents."""
        return 4 * self.latent_channels

    @property
    def pixel_stride(self) -> int:
        """Pixels per token side: codec spatial compression x transformer patch."""
        return self.spatial_compression * self.patch_size[1]

    def latent_frames(self, num_frames: int | None = None) -> int:
        if self.codec == "dct":
            return 1  # the whole trajectory lives in the channels
        frames = self.num_frames if num_frames is None else num_frames
        return 1 + (frames - 1) // self.temporal_compression

    def check_size(self, height: int, width: int, num_frames: int) -> None:
        """Raise a clear error when a generation size does not fit the model's strides or the
        frame limit (:data:`MAX_GENERATED_FRAMES`, the Generate node's maximum)."""
        if num_frames > MAX_GENERATED_FRAMES:
            raise InputError(f"{self.name}: at most {MAX_GENERATED_FRAMES} frames can be generated at once, got "
                             f"{num_frames}; generate fewer frames (the model was made for 49)")
        stride = self.pixel_stride
        if height % stride or width % stride or height < stride or width < stride:
            raise InputError(
                f"{self.name}: the trajectory grid must be a multiple of {stride} pixels, got {width}x{height}; "
                f"try {max(stride, round(width / stride) * stride)}x{max(stride, round(height / stride) * stride)}"
            )
        if self.codec == "dct":
            if num_frames < 2:
                raise InputError(f"{self.name}: frame count must be at least 2, got {num_frames}")
        elif num_frames < 1 or (num_frames - 1) % self.temporal_compression:
            raise InputError(
                f"{self.name}: frame count must be 1 + a multiple of {self.temporal_compression} (e.g. 49), got {num_frames}"
            )

    # -- serialization -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["config_version"] = CONFIG_VERSION
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> STraGConfig:
        data = dict(data)
        version = data.pop("config_version", CONFIG_VERSION)
        if version > CONFIG_VERSION:
            raise InputError(f"model config version {version} is newer than this build understands ({CONFIG_VERSION})")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown model config fields: {', '.join(unknown)}")
        if version < 2:  # written before the field existed: the only depth condition then
            data.setdefault("depth_condition", "minmax")
        if version < 3:  # written before these fields existed: every word was read, decoding was bilinear
            data.setdefault("text_vocabulary", "open")
            data.setdefault("decode_guide", "none")
        if version < 4:  # written before the field existed: cell means only
            data.setdefault("condition_detail", "none")
        if version < 5:  # written before the field existed: no object encoder
            data.setdefault("object_encoder", "none")
        if version < 6:  # written before the field existed: no object binding
            data.setdefault("object_binding", "none")
        if version < 7:  # written before the field existed: no motion gate
            data.setdefault("motion_gate", "none")
        if version < 8:  # written before the field existed: no smoothing
            data.setdefault("motion_smoothing", 0.0)
        if version < 9:  # written before the field existed: one sample
            data.setdefault("sample_average", 1)
        if version < 10:  # written before the field existed: the whole prompt at once
            data.setdefault("clause_composition", "none")
        if version < 12:  # written before the field existed: the cosine basis alone
            data.setdefault("temporal_decoder", "basis")
        if version < 14:  # written before the field existed: every sample on the image as it is
            data.setdefault("mirror_average", False)
        if version < 15:  # written before the field existed: the gate per latent cell
            data.setdefault("motion_gate_pixels", False)
        if version < 16:  # written before the field existed: each pixel's motion as decoded
            data.setdefault("rigid_segments", False)
        if version < 17:  # written before the field existed: segments cut at depth jumps only
            data.setdefault("rigid_level", 0.0)
            data.setdefault("object_focus", 0.0)
        if version < 18:  # written before the field existed: every fit may change a segment's size
            data.setdefault("rigid_scale", "any")
        if version < 19:  # written before the field existed: a growing segment's size change as fitted
            data.setdefault("rigid_growth_power", 1.0)
            data.setdefault("rigid_clauses", False)
        if version < 20:  # written before the field existed: a growing segment under the common similarity limit
            data.setdefault("rigid_growth_limit", COMMON_SIMILARITY_LIMIT)
        if version < 21:  # written before the fields existed: a spinning segment's turn as fitted, the common limit
            data.setdefault("rigid_spin_gain", 1.0)
            data.setdefault("rigid_spin_limit", COMMON_SIMILARITY_LIMIT)
        if version < 22:  # written before the field existed: a fitted translation on every axis
            data.setdefault("rigid_axes", False)
        named = NAMED_CONFIGS.get(data.get("name"))
        if named is not None:  # fields added after the file was written: the named config's value
            for f in dataclasses.fields(cls):
                data.setdefault(f.name, getattr(named, f.name))
        if "motion_encoder" in data and isinstance(data["motion_encoder"], dict):
            data["motion_encoder"] = MotionEncoderConfig(**data["motion_encoder"])
        if "patch_size" in data:
            data["patch_size"] = tuple(data["patch_size"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> STraGConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> STraGConfig:
        return dataclasses.replace(self, **changes)


MORE4D_14B = STraGConfig(
    name="more4d-14b",
    # the authors trained with a zero reference latent and the MPM features shifted by one frame
    reference_image="zero",
    mpm_alignment="reference",
)

MORE4D_SMALL = STraGConfig(
    name="more4d-small",
    dim=192,
    num_heads=6,
    num_layers=6,
    ffn_dim=576,
    freq_dim=64,
    latent_channels=24,
    text_dim=128,
    text_len=24,
    image_dim=None,
    motion_encoder=MotionEncoderConfig(embed_dim=128, depth=2, num_heads=4, image_size=96, patch_size=8),
    motion_encoder_trainable=True,  # no pretrained weights at this size: learn it with the model
    codec="dct",
    dct_coefficients=8,
    decode_guide="depth",  # motion edges on depth edges (codec oracle, validation moving points: 0.71 bilinear -> 0.80; docs/bundled-model-history.md)
    spatial_compression=4,
    # the procedural data's motions are world distances relative to depth: in focal units the field does
    # not depend on the unseen field of view, and depth as a fraction of the farthest keeps the parallax
    # of a camera move (proportional to far depth / depth) readable from the depth input
    normalization="focal",
    depth_condition="max_ratio",
    text_encoder="word_hash",
    text_vocabulary="procedural",  # synonyms mapped to the trained words, unknown words named (models.vocabulary)
    height=96,
    width=128,
    steps=20,
    guidance_scale=1.0,  # measured: text guidance above 1 amplifies this small model's errors
    # post-processing default of the product (the evaluation's headline row has it off): chosen on the validation
    # split among 0.002 / 0.004 / 0.008 / 0.016 by the all-scenes within-threshold average (python -m more4d_core.eval
    # --split validation --still-sweep ...); ~2 pixels of the 128-wide grid over the clip. A trained file carries
    # its own, chosen on validation and written at export (the bundled file: 0.032)
    still_threshold=0.016,
)

MORE4D_TINY = STraGConfig(
    name="more4d-tiny",
    dim=48,
    num_heads=4,
    num_layers=2,
    ffn_dim=96,
    freq_dim=32,
    latent_channels=12,
    text_dim=32,
    text_len=8,
    image_dim=None,
    motion_encoder=MotionEncoderConfig(embed_dim=32, depth=1, num_heads=2, image_size=32, patch_size=8),
    codec="patchify",
    temporal_compression=4,
    spatial_compression=4,
    normalization="intrinsics",
    text_encoder="word_hash",
    word_hash_vocab=256,
    word_hash_layers=1,
    num_frames=9,
    height=32,
    width=32,
    steps=4,
)

NAMED_CONFIGS: dict[str, STraGConfig] = {c.name: c for c in (MORE4D_14B, MORE4D_SMALL, MORE4D_TINY)}


def get_config(name: str) -> STraGConfig:
    try:
        return NAMED_CONFIGS[name]
    except KeyError:
        raise InputError(f"unknown model config {name!r}; known: {', '.join(NAMED_CONFIGS)}") from None
