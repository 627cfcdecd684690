"""Behaviour contracts of core formulas, each checked against a value derived outside the code under test
(hand arithmetic from the documented formula, the pinhole model, the rectified-flow definition, the
procedural ground truth). Each test here was seen to fail when the behaviour it guards was broken (issue 15).
"""

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from more4d_core.camera.intrinsics import intrinsics_from_fov, make_intrinsics
from more4d_core.camera.path import CameraPath
from more4d_core.completion import complete_classical
from more4d_core.generator import build_generator
from more4d_core.geometry.projection import backproject_depth
from more4d_core.models.config import MORE4D_SMALL, MORE4D_TINY
from more4d_core.models.dit import MotionModulation, STraGTransformer
from more4d_core.models.madanorm import MAdaNorm
from more4d_core.models.trajectory_codec import TemporalBasisCodec, build_codec
from more4d_core.render import render_scene
from more4d_core.render.renderer import render_points
from more4d_core.sampling.conditioning import encode_conditions
from more4d_core.scene import Scene4D


def _silu(x: float) -> float:
    return x / (1.0 + math.exp(-x))


# -- MAdaNorm: the strength lambda scales the gate (g -> lambda * g) -------------------------------------------------


def test_madanorm_gate_at_half_strength_matches_the_formula():
    """x' = x * (1 + s * lambda * g) + b * lambda * g with [s, b] = Linear(SiLU(f)), by hand at lambda = 0.5."""
    mod = MAdaNorm(2, 3)
    weight = [[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5], [1.0, 1.0], [-2.0, 0.5], [0.0, -1.0]]
    bias = [0.1, -0.2, 0.3, 0.05, 0.0, -0.4]
    gate = [0.4, -1.0, 2.0]
    with torch.no_grad():
        mod.spatial_guide[1].weight.copy_(torch.tensor(weight))
        mod.spatial_guide[1].bias.copy_(torch.tensor(bias))
        mod.gate.copy_(torch.tensor(gate))
    f = [0.5, -1.0]
    act = [_silu(v) for v in f]
    lin = [sum(w * a for w, a in zip(row, act)) + b0 for row, b0 in zip(weight, bias)]
    s, b = lin[:3], lin[3:]
    lam = 0.5
    x = [1.5, -0.5, 2.0]
    expected_scale = [s[c] * gate[c] * lam for c in range(3)]
    expected_shift = [b[c] * gate[c] * lam for c in range(3)]
    expected_x = [x[c] * (1 + expected_scale[c]) + expected_shift[c] for c in range(3)]

    feats = torch.tensor([[f]])  # [B=1, S=1, F=2]
    scale, shift = mod.modulation(feats, lam)
    assert scale[0, 0].tolist() == pytest.approx(expected_scale, rel=1e-5)
    assert shift[0, 0].tolist() == pytest.approx(expected_shift, rel=1e-5)
    out = MotionModulation(feats, lam, "all_frames", 1).apply(mod, torch.tensor([[x]]))
    assert out[0, 0].tolist() == pytest.approx(expected_x, rel=1e-5)


def test_dit_strength_scales_every_gate():
    """The transformer at strength lambda is the transformer with every gate multiplied by lambda at strength 1
    (exact in binary for lambda = 0.5 and 2)."""
    cfg = MORE4D_TINY
    torch.manual_seed(0)
    model = STraGTransformer.from_stgconfig(cfg).eval()
    for blk in model.blocks:
        blk.spatial_guidance_self.gate.data.normal_()
        blk.spatial_guidance_ffn.gate.data.normal_()
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 4 * cfg.latent_channels, 3, 8, 8, generator=g)
    text = torch.randn(1, cfg.text_len, cfg.text_dim, generator=g)
    t = torch.tensor([500.0])
    with torch.no_grad():
        feats = model.encode_motion(torch.rand(1, 3, 24, 24, generator=g))
        outs = {lam: model(latents, t, text, motion_features=feats, motion_strength=lam) for lam in (0.5, 1.0, 2.0)}
        for lam in (0.5, 2.0):
            scaled = copy.deepcopy(model)
            for blk in scaled.blocks:
                blk.spatial_guidance_self.gate.mul_(lam)
                blk.spatial_guidance_ffn.gate.mul_(lam)
            ref = scaled(latents, t, text, motion_features=feats, motion_strength=1.0)
            assert (outs[lam] - outs[1.0]).abs().max() > 1e-4  # lambda matters at all
            torch.testing.assert_close(outs[lam], ref, rtol=1e-5, atol=1e-6)


# -- classical completion fills the holes from their surroundings -----------------------------------------------------


@pytest.mark.parametrize("texture", [False, True])
def test_classical_completion_fills_a_hole_with_the_surrounding_colour(texture):
    h, w, frames = 16, 24, 3
    colour_a = torch.tensor([51, 153, 102], dtype=torch.uint8)  # exact in 8 bits: 0.2, 0.6, 0.4
    colour_b = torch.tensor([204, 51, 0], dtype=torch.uint8)
    image = colour_a.expand(h, w, 3).clone()
    image[:, 12:] = colour_b
    k = intrinsics_from_fov(h, w, 60.0)
    flat = Scene4D.from_depth(torch.full((h, w), 2.0), image, k, num_frames=frames)
    hole = torch.zeros(h, w, dtype=torch.bool)
    hole[5:11, 2:8] = True  # 6x6, inside colour A, at least 4 pixels from colour B
    visible = (~hole).reshape(1, -1).expand(frames, -1)
    scene = Scene4D(flat.points, image, grid_hw=(h, w), intrinsics=k, visibility=visible)
    path = CameraPath(torch.eye(4, dtype=torch.float64).expand(frames, 4, 4))
    result = render_scene(scene, path, use_visibility=True, return_point_index=True, background=(0.0, 0.0, 0.0))
    assert torch.equal(result.holes, hole.expand(frames, h, w))  # the render really has that hole
    out = complete_classical(result, scene, path, texture=texture)  # the hole is there from the first frame on
    a = colour_a.float() / 255.0
    for t in range(frames):
        filled = out[t][hole]
        assert (filled - a).abs().max() < 2.5 / 255, f"frame {t}: hole not filled with the surrounding colour"
    assert torch.equal(out[~result.holes], result.frames[~result.holes])


# -- the generator's output grid: the camera is the image's camera rescaled -------------------------------------------


def test_output_grid_intrinsics_are_the_image_camera_rescaled():
    gen = build_generator(MORE4D_TINY, seed=0)
    h, w = 40, 48
    k = make_intrinsics(50.0, 40.0, 24.0, 20.0)
    g = torch.Generator().manual_seed(0)
    image = torch.rand(h, w, 3, generator=g)
    depth = torch.full((h, w), 2.0)
    grid = (10, 24)  # x / 2 in width, x / 4 in height
    scene = gen.generate(image, depth, k, "the ball slides left", seed=0, steps=1, grid_hw=grid)
    # by hand: fx 50 * 24/48 = 25, cx 24 * 0.5 = 12, fy 40 * 10/40 = 10, cy 20 * 0.25 = 5
    expected = torch.tensor([[25.0, 0.0, 12.0], [0.0, 10.0, 5.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(scene.intrinsics.double(), expected)
    # frame-0 point of grid pixel (i, j) lies on the image ray through the same spot: image pixel
    # coordinates (u, v) = ((j + 0.5) * 2, (i + 0.5) * 4), X = (u - 24) / 50 * Z, Y = (v - 20) / 40 * Z
    p0 = scene.points0.reshape(*grid, 3)
    for i, j in ((0, 0), (9, 23), (3, 17)):
        u, v = (j + 0.5) * 2.0, (i + 0.5) * 4.0
        assert p0[i, j].tolist() == pytest.approx([(u - 24) / 50 * 2.0, (v - 20) / 40 * 2.0, 2.0], abs=1e-5)


# -- evaluation rows: the codec oracle is lossy, the wrong-caption row gets another caption ---------------------------


def test_eval_codec_oracle_and_wrong_caption_rows(monkeypatch):
    from more4d_core.eval import protocol

    made = []

    def recording_sample(*args, **kwargs):
        s = protocol_generate_sample(*args, **kwargs)
        made.append(s)
        return s

    protocol_generate_sample = protocol.generate_sample
    monkeypatch.setattr(protocol, "generate_sample", recording_sample)
    gen = build_generator(MORE4D_TINY, seed=0)
    calls = []

    def fake_generate(image, depth, intrinsics, prompt, **_):
        scene = next(s for s in made if s.image is image)
        calls.append((scene, prompt))
        # the truth for the scene's own caption, no motion for any other caption
        tracks = scene.tracks if prompt == scene.caption else scene.tracks[:1].expand_as(scene.tracks)
        return SimpleNamespace(points=tracks.clone())

    monkeypatch.setattr(gen, "generate", fake_generate)
    result = protocol.evaluate(gen, split="validation", samples=2, seed=0, mean_samples=1, with_controls=False,
                               log=lambda *_: None)
    scenes = {id(s): s for s, _ in calls}
    assert len(scenes) == 2
    for key, s in scenes.items():
        prompts = [p for c, p in calls if id(c) == key]
        assert s.caption in prompts  # the headline row
        wrong = [p for p in prompts if p != s.caption]
        assert len(wrong) == 1 and wrong[0], f"the wrong-caption row was given {prompts} for {s.caption!r}"
    rows = result["cells"]["grid"]
    static = rows["nothing moves"]["all scenes / all"]
    assert static["epe3d"] > 1e-3  # the scenes move
    assert rows["model"]["all scenes / all"]["epe3d"] == 0.0  # the fake returns the truth for the true caption
    assert rows["model, wrong caption"]["all scenes / all"] == static  # ... and no motion for another caption
    oracle = rows["codec oracle"]["all scenes / all"]["epe3d"]
    # the tiny codec averages 4x4 pixel blocks: it loses detail (not the truth) but keeps the motion
    assert 1e-4 < oracle < 0.5 * static["epe3d"], (oracle, static["epe3d"])


def test_eval_guidance_reaches_every_generation(monkeypatch):
    from tiny_models import record_generate_option

    from more4d_core.eval import protocol

    gen = build_generator(MORE4D_TINY, seed=0)
    seen = record_generate_option(monkeypatch, gen, "guidance_scale")
    result = protocol.evaluate(gen, split="validation", samples=2, seed=0, mean_samples=1, with_controls=False,
                               guidance=2.5, log=lambda *_: None)
    assert seen == [2.5] * 4 and result["guidance"] == 2.5  # two scenes x (own caption, wrong caption)
    protocol.evaluate(gen, split="validation", samples=2, seed=0, mean_samples=1, with_controls=False,
                      log=lambda *_: None)
    assert seen[4:] == [None] * 4  # no choice given: the model's own default


def test_eval_perturbed_depth_is_fixed_keeps_the_order_and_reaches_the_model(monkeypatch):
    from tiny_models import record_generate_option

    from more4d_core.eval import protocol

    scene = protocol.generate_sample(3, "validation", 32, 32, 9)
    true = scene.depth[0]
    seen = protocol.depth_seen(scene, "perturbed", 3)
    assert torch.equal(seen, protocol.depth_seen(scene, "perturbed", 3)) and not torch.allclose(seen, true)
    # a depth model's errors keep which pixel is nearer for most pixel pairs (rank correlation), unlike a new layout
    ranks = torch.stack([true.flatten().argsort().argsort(), seen.flatten().argsort().argsort()]).double()
    assert torch.corrcoef(ranks)[0, 1] > 0.7
    gen = build_generator(MORE4D_TINY, seed=0)
    given = []
    record_generate_option(monkeypatch, gen, "seed")
    stand_in = gen.generate
    monkeypatch.setattr(gen, "generate", lambda image, depth, *a, **k: given.append(depth) or stand_in(image, depth, *a, **k))
    protocol.evaluate(gen, split="validation", samples=2, seed=5, mean_samples=1, with_controls=False,
                      depth="perturbed", log=lambda *_: None)
    for i, depth in enumerate(given[::2]):  # each scene's own caption, then the wrong one
        s = protocol.generate_sample(5 + i, "validation", gen.config.height, gen.config.width, gen.config.num_frames)
        assert torch.equal(depth, protocol.depth_seen(s, "perturbed", 5 + i)) and not torch.equal(depth, s.depth[0])


# -- training target: the rectified-flow velocity noise - x0 ---------------------------------------------------------


def test_flow_matching_target_is_noise_minus_x0():
    """x_sigma = (1 - sigma) x0 + sigma eps, velocity eps - x0 = (x_sigma - x0) / sigma: a model that predicts
    exactly that has zero loss (and the opposite sign would give 4 E[v^2])."""
    from more4d_core.train.objective import FlowMatchingObjective, batch_fields

    cfg = MORE4D_TINY
    gen = build_generator(cfg, seed=0)
    g = torch.Generator().manual_seed(3)
    b, frames, h, w = 2, cfg.num_frames, cfg.height, cfg.width
    k = intrinsics_from_fov(h, w, 60.0).float()
    depth = torch.rand(b, h, w, generator=g) + 1.0
    p0 = torch.stack([backproject_depth(d, k).reshape(h, w, 3) for d in depth])
    steps = torch.linspace(0, 1, frames).view(1, frames, 1, 1, 1)
    tracks = p0.unsqueeze(1) + steps * torch.tensor([0.05, -0.02, 0.1]) * torch.rand(b, 1, h, w, 1, generator=g)
    batch = {"image": torch.rand(b, 3, h, w, generator=g), "depth": depth, "intrinsics": k.expand(b, 3, 3),
             "tracks": tracks, "caption": ["the ball slides left", "the cat moves right"]}
    x0 = gen.codec.encode_field(batch_fields(batch, cfg.normalization)).float()
    assert x0.abs().max() > 0
    seen = []

    def velocity_oracle(model_input, timestep, text, **_):
        noisy = model_input[:, : cfg.latent_channels].double()
        sigma = (timestep.double() / 1000.0).view(-1, 1, 1, 1, 1)
        seen.append(sigma.flatten())
        return ((noisy - x0.double()) / sigma).float()

    objective = FlowMatchingObjective(gen.transformer, gen.text_encoder, gen.codec, text_dropout=0.0)
    gen.transformer.forward = velocity_oracle
    with torch.no_grad():
        loss = float(objective(batch, torch.Generator().manual_seed(0)))
    sigma = seen[0]
    assert (sigma > 0.01).all() and (sigma < 1).all()
    v_scale = float((x0.double() ** 2).mean() + 1.0)  # E[(eps - x0)^2] = E[x0^2] + 1
    assert loss < 1e-6 * v_scale, loss


# -- depth_condition: the config chooses how the depth map becomes [-1, 1] -------------------------------------------


class _RecordingCodec:
    def __init__(self):
        self.stills = []

    def encode_still(self, image, num_frames):
        self.stills.append(image.clone())
        return image.unsqueeze(2)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("max_ratio", [-0.75, -0.5, 0.0, 1.0]),  # 2 z / 8 - 1
        ("minmax", [-1.0, -1.0 + 2 / 7, -1.0 + 6 / 7, 1.0]),  # 2 (z - 1) / 7 - 1
    ],
)
def test_depth_condition_setting_reaches_the_conditioning(mode, expected):
    cfg = MORE4D_TINY.replace(depth_condition=mode, use_reference_tokens=False)
    codec = _RecordingCodec()
    transformer = SimpleNamespace(patch_embedding=SimpleNamespace(weight=torch.zeros(1)))
    depth = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
    encode_conditions(cfg, codec, transformer, torch.rand(1, 3, 2, 2), depth, 5, with_motion=False)
    control, depth_video = codec.stills
    assert depth_video.shape == (1, 3, 2, 2)
    for c in range(3):
        assert depth_video[0, c].flatten().tolist() == pytest.approx(expected, abs=1e-6)


# -- the temporal-basis codec of the bundled model -------------------------------------------------------------------


def _dct2_basis(frames: int, coefficients: int) -> np.ndarray:
    """DCT-II basis vectors cos(pi k (n + 1/2) / N) (unnormalized, as the codec documents), [N, K]."""
    n = np.arange(frames)[:, None]
    k = np.arange(coefficients)[None, :]
    return np.cos(np.pi * k * (n + 0.5) / frames)


def test_bundled_codec_config_and_dct_basis():
    from more4d_core.checkpoints.bundle import iter_component, read_header
    from more4d_core.weights import DEFAULT_MODEL

    header = read_header(DEFAULT_MODEL)
    cfg = header.config
    assert (cfg.codec, cfg.dct_coefficients, cfg.spatial_compression, cfg.latent_channels) == ("dct", 8, 4, 24)
    assert (cfg.codec, cfg.dct_coefficients, cfg.spatial_compression) == (
        MORE4D_SMALL.codec, MORE4D_SMALL.dct_coefficients, MORE4D_SMALL.spatial_compression)
    stored = dict(iter_component(DEFAULT_MODEL, "codec"))
    assert stored["latent_scale"].shape == (3 * cfg.dct_coefficients,)
    codec = build_codec(cfg)
    assert isinstance(codec, TemporalBasisCodec)
    for frames in (cfg.num_frames, 9):
        basis = codec.basis(frames, dtype=torch.float64).numpy()
        np.testing.assert_allclose(basis, _dct2_basis(frames, cfg.dct_coefficients), atol=1e-12)
        # DCT-II columns are orthogonal with squared norms N (k = 0) and N / 2 (k > 0)
        gram = basis.T @ basis
        np.testing.assert_allclose(gram, np.diag([frames] + [frames / 2] * (cfg.dct_coefficients - 1)), atol=1e-9)


def test_dct_codec_encodes_a_pure_cosine_into_its_coefficient():
    codec = TemporalBasisCodec(coefficients=4, spatial=1)
    frames = 7
    t = np.arange(frames)
    field = torch.zeros(1, 3, frames, 1, 1, dtype=torch.float64)
    field[0, 0, :, 0, 0] = torch.from_numpy(0.3 * np.cos(np.pi * 2 * (t + 0.5) / frames))  # x: k = 2
    field[0, 2, :, 0, 0] = -0.2  # z: constant = k = 0
    latents = codec.encode_field(field)[0, :, 0, 0, 0]
    expected = np.zeros(12)
    expected[2] = 0.3  # channel x, coefficient 2
    expected[8] = -0.2  # channel z, coefficient 0
    np.testing.assert_allclose(latents.numpy(), expected, atol=1e-10)


# -- rendering: camera-to-world poses in OpenCV axes, pinhole projection ----------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_render_camera_translation_moves_points_the_pinhole_way(backend):
    if backend == "numba":
        pytest.importorskip("numba")
    fx = fy = 15.0
    cx, cy = 8.5, 6.5
    h, w = 12, 16
    k = make_intrinsics(fx, fy, cx, cy)
    points = torch.tensor([[0.0, 0.0, 5.0], [1.0, 0.0, 5.0]]).expand(5, 2, 3).contiguous()
    poses = torch.eye(4, dtype=torch.float64).repeat(5, 1, 1)
    poses[1, 0, 3] = 1.0  # camera 1 m to the right (+x): points appear to its left
    poses[2, 0, 3] = -1.0  # camera to the left
    poses[3, 1, 3] = 1.0  # camera down (+y): points appear higher up
    poses[4, 2, 3] = 1.0  # camera forward (+z): points spread away from the centre
    result = render_points(points, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]), poses, k, h, w, backend=backend)
    # u = fx X_cam / Z_cam + cx, v = fy Y_cam / Z_cam + cy with X_cam = X - t_x (identity rotation):
    expected = {
        0: {(6, 8): 0, (6, 11): 1},  # u = 8.5, 11.5
        1: {(6, 5): 0, (6, 8): 1},  # u = 8.5 - 3 = 5.5, 11.5 - 3 = 8.5
        2: {(6, 11): 0, (6, 14): 1},  # u = 11.5, 14.5
        3: {(3, 8): 0, (3, 11): 1},  # v = 6.5 - 3 = 3.5
        4: {(6, 8): 0, (6, 12): 1},  # Z = 4: u = 8.5, 8.5 + 15 / 4 = 12.25
    }
    for t, pixels in expected.items():
        drawn = {tuple(ij): int(result.frames[t][tuple(ij)].argmax()) for ij in (~result.holes[t]).nonzero().tolist()}
        assert drawn == pixels, f"frame {t} ({backend})"
