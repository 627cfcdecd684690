"""Each moving segment moved as one piece: one translation, or one similarity transform, per frame.

The denoiser generates a rigid slide as a smoothly non-rigid field: one side or the middle of the object moves
faster (docs/bundled-model-history.md, "Where a mover's remaining error lives": at the last frame of a 158-pixel
slide the points' speeds spread by 23 pixels, the same in every sample). The procedural movers it was trained on
slide, bounce, move toward or away, spin and grow, each of which moves all of an object's points by one similarity
transform of 3D space (rotation, translation, scale); bends and waves do not. Here the moving pixels (the pixel
gate's) are split into segments, connected pixels cut where the depth jumps so that an object and the background
beside it fall apart, and (with a ``level``) where the gate's probability crosses that level, so that an object the
gate is sure of falls apart from the surface beside it that it let move with less confidence, and (with ``regions``)
where the clause whose gate is surest of a pixel changes, so that two objects that touch but move as different clauses
ask fall apart; each segment's points at each frame are replaced by

* its median displacement, where that leaves at most :data:`TRANSLATION_LIMIT` of the segment's motion unexplained
  (with ``axes``, only its component along the one axis of the camera the segment's clause names: the generated
  slides drift a little up, down and in depth, the bounces sideways: docs/bundled-model-history.md, "A named
  translation kept on its axis");
* else the similarity transform that best maps its frame-0 points onto them (least squares, Umeyama's closed form),
  where that leaves at most :data:`SIMILARITY_LIMIT` (with ``with_scale`` off, rotation and translation alone: an
  object that only turns keeps its size, where the generated spins pull its points in towards the axis; a segment
  whose motion is a growth the prompt names may change its size, and ``growth_power`` strengthens that change: the
  bundled denoiser makes about half of the size change a growth asks for: docs/bundled-model-history.md, "Segments
  per clause, and growth strengthened"); a segment whose motion is a spin the prompt names may take its rotation fit
  under its own limit, and ``spin_gain`` turns the fitted rotation further (the bundled denoiser's spins turn about 0.92
  of the angle asked: docs/bundled-model-history.md, "Where spins and slides still lose");
* else nothing: a segment whose motion is not rigid (a bend, a wave, two objects touching that move differently)
  keeps its motion as generated, as do segments of fewer than :data:`MIN_SEGMENT` pixels.

Frame 0 and the pixels outside the mask stay as they are.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from ..models.vocabulary import read_prompt

# chosen on 80 still-camera scenes of the training stream (seeds from 990000000 and 990000150), never on validation
# (docs/bundled-model-history.md, "Each moving segment as one piece")
DEPTH_JUMP = 0.04  # a relative depth difference between 4-neighbours that separates two segments
MIN_SEGMENT = 16  # segments of fewer pixels keep their motion as generated
TRANSLATION_LIMIT = 0.1  # a segment moves by its median displacement where that leaves at most this share unexplained
SIMILARITY_LIMIT = 0.1  # else by its similarity fit where that leaves at most this share
GROWTH_WORDS = frozenset({"grows", "shrinks"})  # the trained words of a motion that changes an object's size
SPIN_WORDS = frozenset({"spins"})  # the trained word of a motion that turns an object about an axis of its own
# the trained words that put an object clause's translation on one axis of the camera (0 = x, 1 = y, 2 = z)
AXIS_WORDS = {"left": 0, "right": 0, "up": 1, "down": 1, "toward": 2, "away": 2, "bounces": 1}
NON_TRANSLATION_WORDS = frozenset({"spins", "grows", "shrinks", "waves", "ripples", "bends"})


def names_growth(prompt: str) -> bool:
    """Whether ``prompt`` names a motion that changes an object's size, read as the trained words (synonyms mapped:
    "expands" is "grows"; :func:`..models.vocabulary.read_prompt`) whatever the model's own text encoder reads."""
    return any(word in GROWTH_WORDS for word in read_prompt(prompt).words)


def names_spin(prompt: str) -> bool:
    """Whether ``prompt`` names a spin, read as the trained words ("rotates", "turns", "whirls" are "spins")."""
    return any(word in SPIN_WORDS for word in read_prompt(prompt).words)


def named_axis(prompt: str) -> int:
    """The one axis of the camera along which ``prompt`` (an object clause) asks for a translation, read as the
    trained words: 0 (x) for "left" / "right", 1 (y) for "up" / "down" and "bounces", 2 (z) for "toward (the camera)" /
    "away"; -1 where it names none, more than one, or a motion that is not a translation (a spin, a growth, a wave, a
    bend)."""
    words = set(read_prompt(prompt).words)
    axes = {AXIS_WORDS[word] for word in words if word in AXIS_WORDS}
    return axes.pop() if len(axes) == 1 and not words & NON_TRANSLATION_WORDS else -1


def named_pixels(names, prompt: str, clauses: list[str] | None = None,
                 regions: torch.Tensor | None = None) -> torch.Tensor | bool | int:
    """What ``names(text)`` says a text names, per pixel: with the object ``clauses`` of the prompt and ``regions [H,
    W]`` (each pixel's clause, an index into them) each pixel's clause's value; without them ``prompt``'s, for every
    pixel."""
    if clauses is None or regions is None:
        return names(prompt)
    named = torch.tensor([names(clause) for clause in clauses], device=regions.device)
    return named[regions]


def growth_pixels(prompt: str, clauses: list[str] | None = None,
                  regions: torch.Tensor | None = None) -> torch.Tensor | bool:
    """Where a segment's motion is a growth the prompt names (:func:`named_pixels` of :func:`names_growth`)."""
    return named_pixels(names_growth, prompt, clauses, regions)


def spin_pixels(prompt: str, clauses: list[str] | None = None,
                regions: torch.Tensor | None = None) -> torch.Tensor | bool:
    """Where a segment's motion is a spin the prompt names (:func:`named_pixels` of :func:`names_spin`)."""
    return named_pixels(names_spin, prompt, clauses, regions)


def axis_pixels(prompt: str, clauses: list[str] | None = None,
                regions: torch.Tensor | None = None) -> torch.Tensor | int:
    """The axis each pixel's clause translates along (:func:`named_pixels` of :func:`named_axis`; -1: none)."""
    return named_pixels(named_axis, prompt, clauses, regions)


def rotation_power(rotation: torch.Tensor, power: float) -> torch.Tensor:
    """Rotations ``[T, 3, 3]`` (one per frame, in time order) turned ``power`` times as far about their own axes.

    Each frame's rotation is read as an angle in [0, pi] about a unit axis, then as a signed angle about the axis of
    the first frame that turns at all, unwrapped in time (the multiple of 2 pi nearest the frame before): a spin past
    half a turn keeps its sense, and one that turns back passes through 0 instead of flipping its axis."""
    r = rotation.double()
    cos_a = ((r.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1.0, 1.0)
    v = torch.stack([r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], -1)  # 2 sin(a) axis
    angle = torch.atan2(v.norm(dim=-1) / 2, cos_a)  # in [0, pi]
    # near a half turn the skew part vanishes: (R + R^T) / 2 - cos(a) I = (1 - cos(a)) axis axis^T gives the axis
    sym = (r + r.transpose(-1, -2)) / 2 - cos_a[:, None, None] * torch.eye(3, dtype=r.dtype, device=r.device)
    column = sym[torch.arange(len(r)), :, sym.diagonal(dim1=-2, dim2=-1).argmax(-1)]
    axis = torch.where(v.norm(dim=-1, keepdim=True) > 1e-6, v, column)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-30)
    reference, previous, out = None, 0.0, []
    for t in range(len(r)):
        a = float(angle[t])
        if reference is None and a > 1e-6:
            reference = axis[t]
        if reference is None:  # no turn yet: nothing to raise
            out.append(r[t])
            continue
        side = 1.0 if a <= 1e-6 or float((axis[t] * reference).sum()) >= 0 else -1.0
        along = reference if a <= 1e-6 else side * axis[t]  # the axis on the reference's side
        signed = side * a + 2 * math.pi * round((previous - side * a) / (2 * math.pi))  # nearest the frame before
        previous = signed
        out.append(_axis_angle(along, signed * power))
    return torch.stack(out).to(rotation.dtype)


def _axis_angle(axis: torch.Tensor, angle: float) -> torch.Tensor:
    """Rodrigues' rotation ``[3, 3]`` of ``angle`` about the unit ``axis`` (float64, on the axis' device)."""
    x, y, z = axis.tolist()
    k = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], dtype=torch.float64, device=axis.device)
    return torch.eye(3, dtype=torch.float64, device=axis.device) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def similarity_fit(source: torch.Tensor, target: torch.Tensor, with_scale: bool = True,
                   scale_power: float = 1.0, angle_power: float = 1.0) -> torch.Tensor:
    """Least-squares similarity transforms: ``source [N, 3]`` (one point set) onto ``target [T, N, 3]``; returns the
    mapped source ``[T, N, 3]`` (``s R p + t`` per frame, ``R`` a proper rotation). ``scale_power`` raises each fitted
    scale to that power (the size change multiplied in log scale; 1 = as fitted), ``angle_power`` turns each fitted
    rotation that many times as far about its axis (:func:`rotation_power`), both about the same centroid path."""
    p = source.double()
    q = target.double()
    mu_p = p.mean(0)
    mu_q = q.mean(1, keepdim=True)
    pc = p - mu_p
    qc = q - mu_q
    var_p = (pc * pc).sum(-1).mean()
    if float(var_p) <= 0.0:  # one point repeated: only the translation is defined
        return (mu_q + pc.expand_as(q)).to(target.dtype)
    cov = torch.einsum("tni,nj->tij", qc, pc) / p.shape[0]
    u, sigma, vh = torch.linalg.svd(cov)
    d = torch.ones_like(sigma)
    d[:, 2] = torch.sign(torch.linalg.det(u) * torch.linalg.det(vh))  # -1 where u vh would reflect (dets are +-1)
    rotation = u @ torch.diag_embed(d) @ vh
    if angle_power != 1.0:
        rotation = rotation_power(rotation, angle_power)
    scale = (sigma * d).sum(-1) / var_p if with_scale else torch.ones_like(sigma[:, 0])
    if scale_power != 1.0:
        scale = scale.clamp(min=1e-6) ** scale_power
    mapped = scale[:, None, None] * torch.einsum("tij,nj->tni", rotation, pc) + mu_q
    return mapped.to(target.dtype)


def motion_segments(points0: torch.Tensor, keep: torch.Tensor, depth_jump: float = DEPTH_JUMP,
                    probability: torch.Tensor | None = None, level: float = 0.0,
                    regions: torch.Tensor | None = None) -> np.ndarray:
    """``[H, W]`` int labels (0 = not a segment) of the pixels of ``keep [H, W]`` (bool), 4-connected, cut where
    the frame-0 depth (``points0 [H, W, 3]``'s z) of two neighbours differs by more than ``depth_jump`` of the
    nearer one: the farther pixel of such a pair goes to a segment of its own side. With ``probability [H, W]`` and
    ``level`` > 0, the pixels whose probability reaches ``level`` and those below it are segmented apart; with
    ``regions [H, W]`` (ints: each pixel's clause), the pixels of different regions are."""
    z = points0[..., 2].double().cpu().numpy()
    mask = keep.cpu().numpy().astype(bool)
    far = np.zeros_like(mask)
    for a, b, far_a, far_b in ((z[:-1], z[1:], far[:-1], far[1:]), (z[:, :-1], z[:, 1:], far[:, :-1], far[:, 1:])):
        jump = np.abs(a - b) > depth_jump * np.maximum(np.minimum(a, b), 1e-12)  # neighbours below / to the right
        far_a |= jump & (a > b)  # views of far: marks the farther pixel of each pair
        far_b |= jump & (b > a)
    sides = [mask & ~far, mask & far]
    if probability is not None and level > 0:
        sure = probability.cpu().numpy() >= level
        sides = [part & side for part in sides for side in (sure, ~sure)]
    if regions is not None:
        region = regions.cpu().numpy()
        sides = [part & (region == r) for part in sides for r in np.unique(region)]
    labels = np.zeros(mask.shape, np.int32)
    count = 0
    for part in sides:
        n, lab = cv2.connectedComponents(part.astype(np.uint8), connectivity=4)
        labels[lab > 0] = lab[lab > 0] + count
        count += n - 1
    return labels


def translation_fit(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Translations: ``source [N, 3]`` moved by the per-axis median displacement of ``target [T, N, 3]`` per frame
    (the median, not the mean: the points at an object's outline move short, and a mean would carry them over the
    whole object)."""
    shift = (target - source).median(1, keepdim=True).values
    return (source + shift).to(target.dtype)


def unexplained(source: torch.Tensor, target: torch.Tensor, fitted: torch.Tensor) -> float:
    """The share of the motion ``target - source`` that ``fitted`` leaves unexplained (squared error over squared
    motion, all frames; 0 = fitted exactly)."""
    motion = (target - source).double().square().sum()
    return float((target - fitted).double().square().sum() / motion.clamp(min=1e-30))


def fit_segments(tracks: torch.Tensor, keep: torch.Tensor, *, probability: torch.Tensor | None = None,
                 level: float = 0.0, depth_jump: float = DEPTH_JUMP, min_segment: int = MIN_SEGMENT,
                 translation_limit: float = TRANSLATION_LIMIT, similarity_limit: float = SIMILARITY_LIMIT,
                 with_scale: bool = True, growing: torch.Tensor | bool = False, growth_power: float = 1.0,
                 growth_limit: float | None = None, spinning: torch.Tensor | bool = False, spin_gain: float = 1.0,
                 spin_limit: float | None = None, axes: torch.Tensor | int | None = None,
                 regions: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """``tracks [T, H, W, 3]`` with each segment of ``keep [H, W]`` (:func:`motion_segments`, cut also at ``level``
    of the gate's ``probability [H, W]`` where both are given) moved by one transform
    per frame (frame 0 unchanged): its median translation where that leaves at most ``translation_limit`` of the
    segment's motion unexplained, else its similarity fit (without a change of size unless ``with_scale`` or the
    segment is growing) where that leaves at most ``similarity_limit``, else as generated. A segment is growing where
    ``growing`` (True, or an ``[H, W]`` bool map: where most of its pixels are) says its motion is a named growth; its
    fitted size change is then raised to ``growth_power`` (:func:`similarity_fit`'s ``scale_power``; the decision to
    fit is made on the fit as it is), and it takes the fit where that leaves at most ``growth_limit`` unexplained
    (None: ``similarity_limit``; a flat object's generated growth is often less rigid). A segment is spinning where
    ``spinning`` (as ``growing``) says its motion is a named spin (and it is not growing); its fitted rotation then turns
    ``spin_gain`` times as far (:func:`similarity_fit`'s ``angle_power``), and it takes the fit where that leaves at
    most ``spin_limit`` unexplained (None: ``similarity_limit``). With ``axes`` (an int, or an ``[H, W]`` int map: the
    camera axis, 0 = x, 1 = y, 2 = z, along which a pixel's clause asks for a translation, -1 = none), a segment that
    takes the translation fit and whose pixels mostly name one axis keeps only that component of its translation (the
    decision to take the fit is made on the fit as it is; ``"on axis"`` counts them). With ``regions [H, W]`` (each
    pixel's clause), no segment spans two regions. Returns the tracks and how many segments took each fit (and, with a
    ``growth_power`` or ``spin_gain`` other than 1, how many of the similarity fits each strengthened: ``"strengthened"``,
    ``"turned"``)."""
    frames, h, w, _ = tracks.shape
    labels = torch.from_numpy(motion_segments(tracks[0], keep, depth_jump, probability, level, regions)).reshape(-1).to(tracks.device)
    flat = tracks.reshape(frames, h * w, 3).clone()
    grows = torch.as_tensor(growing, device=tracks.device).expand(h, w).reshape(-1).float()
    spins = torch.as_tensor(spinning, device=tracks.device).expand(h, w).reshape(-1).float()
    axis_of = None if axes is None else torch.as_tensor(axes, device=tracks.device).expand(h, w).reshape(-1).long()
    counts = {"translation": 0, "similarity": 0, "as generated": 0, **({"strengthened": 0} if growth_power != 1.0 else {}),
              **({"turned": 0} if spin_gain != 1.0 else {}), **({"on axis": 0} if axis_of is not None else {})}
    sizes = torch.bincount(labels)
    sizes[0] = 0  # not a segment
    for label in (sizes >= min_segment).nonzero()[:, 0].tolist():  # smaller segments keep their motion
        index = (labels == label).nonzero()[:, 0]
        source, target = flat[0, index], flat[1:, index]
        moved = translation_fit(source, target)
        if unexplained(source, target, moved) <= translation_limit:
            axis = -1 if axis_of is None else int(axis_of[index].mode().values)
            if axis >= 0:  # the translation the clause names: its one axis alone
                along = torch.zeros(3, dtype=moved.dtype, device=moved.device)
                along[axis] = 1.0
                moved = source + (moved - source) * along
                counts["on axis"] += 1
            flat[1:, index] = moved
            counts["translation"] += 1
            continue
        growth = bool(grows[index].mean() > 0.5)
        spin = not growth and bool(spins[index].mean() > 0.5)
        moved = similarity_fit(source, target, with_scale=with_scale or growth)
        limit = growth_limit if growth and growth_limit is not None else similarity_limit
        if spin and spin_limit is not None:
            limit = spin_limit
        if unexplained(source, target, moved) <= limit:
            if growth and growth_power != 1.0:
                moved = similarity_fit(source, target, scale_power=growth_power)
                counts["strengthened"] += 1
            elif spin and spin_gain != 1.0:
                moved = similarity_fit(source, target, with_scale=with_scale, angle_power=spin_gain)
                counts["turned"] += 1
            flat[1:, index] = moved
            counts["similarity"] += 1
            continue
        counts["as generated"] += 1
    return flat.reshape(frames, h, w, 3), counts
