"""Weight-free subject extraction for the depth prior: saliency seeds, then GrabCut.

Saliency of a pixel combines three cues, none learned:
- colour distinctness: its Lab distance to the nearest colour of the image's top border and the
  upper parts of its side borders, and of the ground when one was found (what touches the frame
  there is background more often than not; the bottom border and the low sides are left out because
  subjects stand on them and reach into them);
- focus: local Laplacian energy relative to the image's median (a sharp subject before a
  defocused backdrop);
- a broad centre weight (photographers frame subjects near the middle).
The salient pixels — with what occlusion order says is subject (it hides the ground's end) or is
likely subject (it rises from the bottom of the frame in front of the ground) — seed a GrabCut
segmentation (colour models of subject and background, a graph cut whose boundary follows image
edges); its result is cleaned (small pieces dropped, holes filled).

Subjects by focus (``from_focus``, off by default: it failed its rule, docs/depth-prior-history.md):
when the borders show a defocused backdrop (a shallow depth of field, read from the blur of edges
in :mod:`.defocus`), the border pixels in focus are a subject reaching the frame, not backdrop, and
every pixel in focus starts the graph cut as probable subject. Without it, a close-up whose subject
fills most of the borders (a cat's fur) gives the backdrop the subject's colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .defocus import defocus_map

DEFOCUSED = 2.5  # an edge blur reading (pixels at working size) this wide or wider: out of focus
IN_FOCUS = 1.5  # a reading this narrow or narrower: in focus (an ideal step reads 0.83)
DEFOCUSED_SHARE = 0.1  # the borders show a defocused backdrop when this share of them reads defocused


@dataclass
class Subjects:
    """Subject components at working resolution: ``labels`` ``[h, w]`` (0 = background, 1..n),
    ``sharpness`` the focus map (relative to its median), and ``confidence`` in 0..1."""

    labels: np.ndarray
    count: int
    sharpness: np.ndarray
    confidence: float
    defocused_backdrop: bool = False  # the borders show a defocused backdrop (whether or not focus was used)

    @property
    def mask(self) -> np.ndarray:
        return self.labels > 0


def border_strips(h: int, w: int, frac: float = 0.06, sides_down_to: float = 0.6) -> np.ndarray:
    """Boolean mask of the image's top strip and the upper ``sides_down_to`` of its left and right
    strips (subjects often reach the sides of the frame low down, and stand on its bottom)."""
    m = np.zeros((h, w), bool)
    bh, bw = max(1, int(round(frac * h))), max(1, int(round(frac * w)))
    low = max(bh, int(round(sides_down_to * h)))
    m[:bh] = True
    m[:low, :bw] = True
    m[:low, w - bw:] = True
    return m


def focus_map(grey: np.ndarray) -> np.ndarray:
    """Local sharpness (smoothed absolute Laplacian) divided by its median over the image."""
    h, w = grey.shape
    lap = np.abs(cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), 0.7), cv2.CV_32F, ksize=3))
    energy = cv2.GaussianBlur(lap, (0, 0), 0.03 * max(h, w))
    return energy / max(float(np.median(energy)), 1e-6)


def saliency(rgb: np.ndarray, sharp: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Saliency in 0..1 of ``rgb`` ``[h, w, 3]`` float32 0..1 (see the module's docstring);
    ``known`` ``[h, w]``: the pixels whose colours are the backdrop's (border strips, ground)."""
    h, w = rgb.shape[:2]
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    border = lab[known.ravel()]
    if len(border) > 4000:  # a fixed, even subsample keeps k-means quick
        border = border[:: len(border) // 4000]
    k = int(min(8, max(1, len(border) // 20)))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(border.astype(np.float32), k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    dist = np.sqrt(((lab[:, None, :] - centres[None]) ** 2).sum(-1)).min(1).reshape(h, w)
    colour = np.clip(dist / max(float(np.percentile(dist, 97)), 1e-6), 0, 1)
    colour = cv2.GaussianBlur(colour, (0, 0), 0.01 * max(h, w) + 0.5)
    focus = np.clip(sharp / (sharp + 1.0), 0, 1)  # 0.5 at the median sharpness
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    centre = np.exp(-(((xs + 0.5) / w - 0.5) ** 2) / (2 * 0.3**2) - (((ys + 0.5) / h - 0.55) ** 2) / (2 * 0.35**2))
    s = colour * (0.4 + 0.6 * focus) * (0.35 + 0.65 * centre)
    return s / max(float(s.max()), 1e-6)


def defocused_backdrop(blur: np.ndarray, border: np.ndarray) -> np.ndarray | None:
    """Where the backdrop is, when the photograph shows a defocused one (shallow depth of field):
    at least ``DEFOCUSED_SHARE`` of the ``border`` pixels read defocused; then every pixel that does
    not read in focus may be backdrop and the in-focus ones are not. None when it shows none (all in
    focus, or no edges to read): the borders then stand for the backdrop as they are."""
    if float((blur[border] >= DEFOCUSED).mean()) < DEFOCUSED_SHARE:
        return None
    return ~(blur <= IN_FOCUS)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with the background regions that do not touch the frame filled in."""
    count, labels = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, edge[edge > 0]) | mask
    return mask | ~outside


def extract_subjects(u8: np.ndarray, *, background: np.ndarray | None = None, seeds: np.ndarray | None = None,
                     likely: np.ndarray | None = None, from_focus: bool = False, min_area: float = 0.015,
                     iterations: int = 4) -> Subjects:
    """Subject components of the ``[h, w, 3]`` uint8 RGB image (working resolution).

    ``background``: pixels known not to be subject (the ground); ``seeds``: pixels known to be
    subject (what hides the ground's end); ``likely``: pixels probably subject (what rises from
    the bottom of the frame in front of the ground); ``from_focus``: before a defocused backdrop,
    what is in focus is subject (the module doc)."""
    h, w = u8.shape[:2]
    rgb = u8.astype(np.float32) / 255.0
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    sharp = focus_map(grey)
    border, thin = border_strips(h, w), border_strips(h, w, 0.03)
    shows = defocused_backdrop(defocus_map(grey), border)
    backdrop = shows if from_focus else None
    if backdrop is not None:
        # a defocused backdrop: what is in focus at the borders is a subject reaching the frame
        border, thin = border & backdrop, thin & backdrop
    known = border if background is None else border | background
    sal = saliency(rgb, sharp, known)
    otsu, _ = cv2.threshold((sal * 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = max(otsu / 255.0, 0.2)
    gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    gc[sal > thr] = cv2.GC_PR_FGD
    if backdrop is not None:
        gc[~backdrop] = cv2.GC_PR_FGD  # before a defocused backdrop, what is in focus is subject
    if likely is not None:
        gc[likely] = cv2.GC_PR_FGD
    gc[thin & (gc != cv2.GC_PR_FGD)] = cv2.GC_BGD
    if background is not None:
        gc[background] = cv2.GC_BGD
    if seeds is not None:
        gc[seeds] = cv2.GC_FGD
    empty = Subjects(np.zeros((h, w), np.int32), 0, sharp, 0.0, shows is not None)
    fg = (gc == cv2.GC_PR_FGD) | (gc == cv2.GC_FGD)
    if not fg.any() or fg.all():
        return empty
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(np.ascontiguousarray(u8[..., ::-1]), gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    mask = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    r = max(1, int(round(0.006 * max(h, w))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    mask = fill_holes(mask)
    if background is not None:
        mask &= ~background
    labels, n = _components(mask, min_area)
    if n == 0 or (labels > 0).mean() > 0.85:
        return empty
    # confident when the subject stands out in colour or focus from what surrounds it
    inside, outside = labels > 0, labels == 0
    contrast = float(sal[inside].mean() - sal[outside].mean())
    return Subjects(labels, n, sharp, float(np.clip(2.0 * contrast, 0.0, 1.0)), shows is not None)


def _components(mask: np.ndarray, min_area: float) -> tuple[np.ndarray, int]:
    h, w = mask.shape
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    areas = np.bincount(labels.ravel(), minlength=count)
    keep = np.zeros(max(count, 1), np.int32)
    n = 0
    for c in range(1, count):
        if areas[c] >= min_area * h * w:
            n += 1
            keep[c] = n
    return keep[labels], n
