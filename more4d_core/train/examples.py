"""Training examples at the model's generation grid, from the procedural generator or a TrajScene
folder, with a deterministic mirror augmentation.

Every example is a function of its global index only (procedural seeds are ``offset + index``;
mirroring is decided by the index), so a run resumed at step ``s`` sees exactly the data the
uninterrupted run would have seen.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..data.procedural.motions import RIGID_KINDS
from ..data.procedural.naming import first_mover, nameable_objects, named_caption
from ..data.procedural.scene_generator import generate_sample
from ..data.trajscene import TrajSceneDataset
from ..sampling.mirroring import mirror_caption
from .depth_noise import perturb_depth
from .kind_head import kind_map

# per-pixel training targets of the procedural generator (the mover and kind heads', the rollout's own-rigid target),
# collated when present
_ROLLOUT_MAPS = ("rigid_ids", "loose_mask")  # what mover_maps returns; they describe the scene's own caption
_MASKS = ("mover_mask", "kind_map", *_ROLLOUT_MAPS)
_FLAGS = ("camera_moves",)  # per-example scalars of the procedural generator, collated when present


def mover_maps(object_id: torch.Tensor, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rigid_ids, loose_mask)`` of a frame-0 object map ``[H, W]``: each pixel of an object the caption moves by a
    rigid motion (:data:`~..data.procedural.motions.RIGID_KINDS`) gets the object's index + 1 (0 elsewhere);
    ``loose_mask`` marks the pixels of the movers whose motion is not rigid (spins, growth, bends, waves)."""
    rigid = torch.zeros_like(object_id)
    loose = torch.zeros(object_id.shape, dtype=torch.bool)
    for i in params["movers"]:
        here = object_id == int(i)
        if params["objects"][int(i)]["motion"]["kind"] in RIGID_KINDS:
            rigid[here] = int(i) + 1
        else:
            loose |= here
    return rigid, loose


def mirror_example(ex: dict) -> dict:
    """Mirror an example about the vertical image axis (x -> -x about the principal point)."""
    width = ex["image"].shape[-1]
    k = ex["intrinsics"].clone()
    k[0, 2] = width - k[0, 2]
    tracks = ex["tracks"].flip(2).clone()
    tracks[..., 0] = -tracks[..., 0]
    return {
        "image": ex["image"].flip(-1),
        "depth": ex["depth"].flip(-1),
        "intrinsics": k,
        "tracks": tracks,
        "caption": mirror_caption(ex["caption"]),
        "index": ex["index"],
        **{key: ex[key].flip(-1) for key in _MASKS if key in ex},
        **{key: ex[key] for key in _FLAGS if key in ex},
    }


def _mirror_for(index: int, prob: float) -> bool:
    # a fixed hash of the index: deterministic, evenly spread
    return prob > 0 and ((index * 2654435761) % 2**32) / 2**32 < prob


def _depth_noise_for(index: int, prob: float) -> np.random.Generator | None:
    """The random stream of an example's depth perturbation, or None when it keeps the true depth."""
    rng = np.random.default_rng([7, int(index)])
    return rng if prob > 0 and rng.random() < prob else None


class ProceduralExamples(Dataset):
    """Procedural samples of ``split`` (train / validation / heldout) at ``height x width``,
    ``num_frames``, of data ``recipe``; with probability ``depth_noise`` the depth input is a
    perturbed copy of the true depth (:mod:`.depth_noise`), the target stays the true motion."""

    def __init__(self, split: str, height: int, width: int, num_frames: int, *, seed_offset: int = 0,
                 length: int = 10**9, mirror_prob: float = 0.5, recipe: str = "v2", depth_noise: float = 0.0):
        self.split, self.height, self.width, self.num_frames = split, height, width, num_frames
        self.seed_offset, self.length, self.mirror_prob = seed_offset, length, mirror_prob
        self.recipe, self.depth_noise = recipe, float(depth_noise)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self._example(self._sample(index), index)

    def named_examples(self, index: int, count: int, rng: np.random.Generator) -> list[dict]:
        """Up to ``count`` copies of example ``index``, each captioned with the first mover's motion phrase said of
        one of the scene's nameable objects (distinct objects drawn by ``rng``; the mover itself may be drawn), with
        ``mover_mask`` that object's pixels: what should move when a user names it. Empty when the camera moves, nothing moves
        or fewer than two objects can be named (:mod:`..data.procedural.naming`)."""
        s = self._sample(index)
        named = nameable_objects(s)
        if s.params["camera"]["phrase"] or first_mover(s) is None or len(named) < 2:
            return []
        # the rollout's own-rigid maps describe the scene's own caption, not the named one: left out
        base = {k: v for k, v in self._example(s, index, mirror=False).items() if k not in _ROLLOUT_MAPS}
        out = []
        for j in rng.choice(named, size=min(int(count), len(named)), replace=False):
            ex = {**base, "caption": named_caption(s, int(j)), "mover_mask": s.object_id[0] == int(j)}
            out.append(mirror_example(ex) if _mirror_for(int(index), self.mirror_prob) else ex)
        return out

    def _sample(self, index: int):
        return generate_sample(self.seed_offset + int(index), self.split, self.height, self.width, self.num_frames,
                               with_visibility=False, recipe=self.recipe)

    def _example(self, s, index: int, mirror: bool = True) -> dict:
        depth = s.depth[0]
        noise = _depth_noise_for(int(index), self.depth_noise)
        if noise is not None:
            depth = perturb_depth(depth, noise)
        ex = {
            "image": s.image.permute(2, 0, 1).contiguous(),
            "depth": depth,
            "intrinsics": s.intrinsics.float(),
            "tracks": s.tracks.view(self.num_frames, self.height, self.width, 3),
            "caption": s.caption,
            "index": int(index),
            # pixels of the objects the caption makes move (the mover head's target)
            "mover_mask": torch.isin(s.object_id[0], torch.tensor(s.params["movers"], dtype=torch.int64)),
            "kind_map": kind_map(s.object_id[0], s.params["objects"]),  # the kind head's target
            # the rollout's own-rigid target (rollout.py): which movers move rigidly, and whether the camera moves
            **dict(zip(_ROLLOUT_MAPS, mover_maps(s.object_id[0], s.params))),
            "camera_moves": torch.tensor(bool(s.params["camera"]["phrase"])),
        }
        return mirror_example(ex) if mirror and _mirror_for(int(index), self.mirror_prob) else ex


class TrajSceneExamples(Dataset):
    """Samples of a TrajScene folder, resampled to the training grid (image: antialiased resize;
    tracks and depth: the points nearest to the new pixel centres)."""

    def __init__(self, root, height: int, width: int, *, split: str | None = "train", mirror_prob: float = 0.5):
        self.data = TrajSceneDataset(root, split=split)
        self.height, self.width, self.mirror_prob = height, width, mirror_prob

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict:
        sample = self.data[int(index) % len(self.data)]
        h0, w0 = sample.scene.grid_hw
        rows = ((torch.arange(self.height) + 0.5) * h0 / self.height).long().clamp(max=h0 - 1)
        cols = ((torch.arange(self.width) + 0.5) * w0 / self.width).long().clamp(max=w0 - 1)
        grid = sample.scene.points_grid()[:, rows][:, :, cols]
        image = F.interpolate(sample.image.permute(2, 0, 1)[None], size=(self.height, self.width), mode="bilinear",
                              align_corners=False, antialias=True)[0].clamp(0, 1)
        k = sample.scene.intrinsics_for((self.height, self.width)).float()
        ex = {"image": image, "depth": grid[0, ..., 2].clone(), "intrinsics": k, "tracks": grid.contiguous(),
              "caption": sample.caption, "index": int(index)}
        return mirror_example(ex) if _mirror_for(int(index), self.mirror_prob) else ex


def collate(examples: list[dict]) -> dict:
    out = {k: torch.stack([e[k] for e in examples]) for k in ("image", "depth", "intrinsics", "tracks")}
    for key in _MASKS + _FLAGS:
        if all(key in e for e in examples):
            out[key] = torch.stack([e[key] for e in examples])
    out["caption"] = [e["caption"] for e in examples]
    out["index"] = torch.tensor([e["index"] for e in examples])
    return out
