"""One entry point for every depth source.

``estimate_depth(image, backend=...)`` with backend ``"prior"`` (built-in, no weights;
``"prior_focus"``: the same, taking what is in focus as the subject before a defocused backdrop),
``"transformers"`` (a local transformers depth model folder) or ``"unidepth"`` (a local UniDepth V2
folder); ``external_depth(depth_image, ...)`` converts a depth or disparity map coming from another
node. Loaded models live in the pack's shared model cache (:data:`..cache.MODEL_CACHE`), keyed by
(backend, folder, device), so they are offloaded and evicted like every other model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from .cleanup import clean_depth
from .conversion import image_to_values, to_metric
from .prior import prior_depth
from .result import DepthResult, intrinsics_for

BACKENDS = ("prior", "prior_focus", "transformers", "unidepth")


def _model(backend: str, folder: str | Path, device):
    """The cache handle of a depth model (loaded on first use)."""
    from ..cache import MODEL_CACHE, source_fingerprint

    def load():
        if backend == "transformers":
            from .transformers_backend import TransformersDepth

            return TransformersDepth(folder, device=device)
        from .unidepth_backend import UniDepth

        return UniDepth(folder, device=device)

    return MODEL_CACHE.handle("depth", (backend, source_fingerprint(folder), str(device)), f"{backend} depth {Path(folder).name}",
                              load, device=device)


def estimate_depth(
    image: torch.Tensor,
    backend: str = "prior",
    *,
    model_folder: str | Path | None = None,
    fov_deg: float | None = None,
    median_depth: float = 3.0,
    relative_mode: str | None = None,
    cleanup: str | None = "snap",
    device="cpu",
) -> DepthResult:
    """Metric depth + intrinsics of ``image`` ``[H, W, 3]`` (0..1).

    ``fov_deg`` sets the horizontal field of view when the backend does not predict intrinsics
    (default: f = image width, the reference's assumption). ``median_depth`` scales backends
    without a metric scale (the prior, relative models). ``cleanup`` removes flying pixels at depth
    edges (``"snap"``, ``"drop"`` or None).
    """
    if backend not in BACKENDS:
        raise InputError(f"depth backend must be one of {BACKENDS}, got {backend!r}")
    if backend in ("prior", "prior_focus"):
        result = prior_depth(image, fov_deg=fov_deg, median_depth=median_depth, subjects_from_focus=backend == "prior_focus")
    else:
        if model_folder is None:
            raise FileNotFoundError(
                f"the {backend} depth backend needs a model folder (under ComfyUI's models/more4d/depth/ or a path)"
            )
        from ..cache import MODEL_CACHE

        with MODEL_CACHE.use(_model(backend, model_folder, device)) as model:
            if backend == "transformers":
                result = model(image, fov_deg=fov_deg, median_depth=median_depth, relative_mode=relative_mode)
            else:
                k = None if fov_deg is None else intrinsics_for(*torch.as_tensor(image).shape[-3:-1], fov_deg)
                result = model(image, k)
    return clean_depth(result, mode=cleanup) if cleanup else result


ASPECT_TOLERANCE = 0.03  # a depth map may be resized onto its image when their aspect ratios differ by less


def check_depth_shape(depth_hw: tuple[int, int], image_hw: tuple[int, int], what: str = "the depth map") -> None:
    """Refuse a depth map whose aspect ratio differs from its image's by more than :data:`ASPECT_TOLERANCE`
    (it would be stretched onto the image); any size with the image's aspect is fine."""
    (dh, dw), (ih, iw) = depth_hw, image_hw
    if abs((dw / dh) / (iw / ih) - 1.0) > ASPECT_TOLERANCE:
        raise InputError(
            f"{what} is {dw}x{dh} but the image is {iw}x{ih}: their shapes differ (aspect {dw / dh:.3f} vs "
            f"{iw / ih:.3f}), so it cannot belong to this image. Give the depth map made from this image "
            "(any size with its aspect ratio)."
        )


def external_depth(
    depth_image: torch.Tensor,
    *,
    mode: str = "disparity",
    median_depth: float = 3.0,
    fov_deg: float | None = None,
    size_hw: tuple[int, int] | None = None,
    cleanup: str | None = "snap",
) -> DepthResult:
    """A depth or disparity map from another node (an IMAGE or MASK, brighter = nearer for
    ``"disparity"``, brighter = farther for ``"depth"``) as metric depth with median ``median_depth``.
    ``size_hw`` resizes it to the image it belongs to."""
    values = image_to_values(depth_image)
    if size_hw is not None and tuple(values.shape) != tuple(size_hw):
        check_depth_shape(tuple(values.shape), tuple(size_hw))
        values = torch.nn.functional.interpolate(values[None, None], size=tuple(size_hw), mode="bilinear",
                                                 align_corners=False)[0, 0]
    depth, valid = to_metric(values, mode, median_depth)
    h, w = depth.shape
    result = DepthResult(depth, intrinsics_for(h, w, fov_deg), valid, "external", False,
                         {"mode": mode, "median_depth": median_depth})
    return clean_depth(result, mode=cleanup) if cleanup else result


def prior_depth_at(image: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """The built-in prior's depth ``[H, W]`` of ``image [H, W, 3]`` (0..1) at the field of view of pixel
    ``intrinsics`` (what a user without a depth model gets; the evaluation's ``--depth prior``)."""
    from ..camera.intrinsics import fov_from_intrinsics

    fov, _ = fov_from_intrinsics(intrinsics, *image.shape[:2])
    return estimate_depth(image, "prior", fov_deg=fov).depth
