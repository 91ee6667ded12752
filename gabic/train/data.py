"""Training data streamed from a folder tree, and the validation crops.

- **Files.** Every image file (:data:`IMAGE_SUFFIXES`) under the training folder, at any
  depth, hidden files and folders left out, sorted by relative path. The list is built once
  and kept in the run folder (:data:`FILE_LIST`), keyed by the training folder's top-level
  listing; a resumed run keeps its list even when the folder changed (the same batches come
  back), a new run rebuilds a list whose key no longer matches.
- **Crops.** Each item is decoded in a DataLoader worker (``--workers``; 0 decodes in the
  training process) under the project's image policy (:func:`gabic.codec.images.load_image`):
  a random ``patch × patch`` crop, flipped left-right with probability ½. **Small images**:
  one whose shorter side is below ``patch`` is first enlarged (bicubic, aspect ratio kept) so
  that its shorter side is exactly ``patch``.
- **Unreadable files** (damaged, truncated, not an image, over the pixel limit) are skipped:
  the item is taken from another file drawn at random, and the skipped paths travel with the
  batch so the loop counts and logs them. Training never stops for one bad file.
- **Order.** :class:`~torch.utils.data.DistributedSampler` (also for one process) gives each
  process a disjoint shard of a permutation fixed by ``(seed, epoch)``; an item's crop and flip
  are fixed by ``(seed, epoch, index)``. An epoch's batches are therefore a function of the
  epoch alone, and a run resumed at batch ``b`` of an epoch gets the batches ``b, b+1, …`` it
  would have had.

Only the file names are held in memory, never the pixels of the data set.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..codec.images import load_image

#: File name suffixes read as images (case-insensitive).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"})
#: The cached list of training files, in the run folder.
FILE_LIST = "train_files.json"
#: Files tried for one item before the data set is declared unreadable.
MAX_ATTEMPTS = 16


def list_tree(root: str | os.PathLike) -> list[str]:
    """Relative POSIX paths of the image files under ``root`` (recursive, sorted; names starting
    with ``.`` skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        relative = Path(folder).relative_to(root)
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append((relative / name).as_posix())
    return sorted(found)


def listing_key(root: str | os.PathLike) -> str:
    """SHA-256 of the names, kinds, sizes and modification times of ``root``'s own entries (one
    directory read, however large the tree: files added deep inside go unnoticed — delete the
    cached list to rebuild it)."""
    digest = hashlib.sha256()
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            info = entry.stat()
            digest.update(f"{entry.name}\0{entry.is_dir()}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cached_file_list(root: str | os.PathLike, cache: Path, keep_existing: bool) -> list[str]:
    """The training files under ``root``, from ``cache`` when it lists the same folder and
    (unless ``keep_existing``, as on resume) its key still matches; else listed and written."""
    root = Path(root).resolve()
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("root") == str(root) and (keep_existing or saved.get("key") == listing_key(root)):
            return list(saved["files"])
    files = list_tree(root)
    if not files:
        raise ValueError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder tree")
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"root": str(root), "key": listing_key(root), "files": files}))
    os.replace(tmp, cache)
    return files


def fit_to_crop(image: Image.Image, patch: int) -> Image.Image:
    """``image`` enlarged (bicubic, aspect kept) so that its shorter side is at least ``patch``."""
    short = min(image.size)
    if short >= patch:
        return image
    scale = patch / short
    size = (max(patch, round(image.width * scale)), max(patch, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


class RandomCropDataset(Dataset):
    """Random crops of the files under ``root``; item ``(index, epoch)`` is
    ``(crop (3, patch, patch) uint8, paths skipped as unreadable)``."""

    def __init__(self, root: str | os.PathLike, files: list[str], patch: int, seed: int) -> None:
        self.root = Path(root)
        self.files = files
        self.patch = patch
        self.seed = seed

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, list[str]]:
        index, epoch = key
        rng = np.random.default_rng([self.seed, epoch, index])
        skipped: list[str] = []
        for _ in range(MAX_ATTEMPTS):
            path = self.root / self.files[index]
            try:
                image = fit_to_crop(load_image(path), self.patch)
            except (ValueError, OSError):  # ImageInputError is a ValueError
                skipped.append(str(path))
                index = int(rng.integers(len(self.files)))
                continue
            left = int(rng.integers(image.width - self.patch + 1))
            top = int(rng.integers(image.height - self.patch + 1))
            crop = image.crop((left, top, left + self.patch, top + self.patch))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            return torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1).contiguous(), skipped
        raise RuntimeError(f"{MAX_ATTEMPTS} unreadable training images in a row (last: {skipped[-1]})")


def collate_crops(items: list[tuple[Tensor, list[str]]]) -> tuple[Tensor, list[str]]:
    """``(B, 3, p, p)`` uint8 batch and the skipped paths of its items."""
    return torch.stack([crop for crop, _ in items]), [path for _, paths in items for path in paths]


def shard_sampler(dataset: Dataset, world: int, rank: int, seed: int, epoch: int) -> DistributedSampler:
    """This process's shard of epoch ``epoch`` (a permutation fixed by ``seed + epoch``)."""
    sampler = DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    return sampler


def steps_per_epoch(dataset: Dataset, batch: int, world: int) -> int:
    """Full batches per process in one epoch."""
    steps = len(shard_sampler(dataset, world, 0, 0, 0)) // batch
    if steps == 0:
        raise ValueError(f"{len(dataset)} training images cannot fill one batch of {batch} on each of "
                         f"{world} processes")  # fmt: skip
    return steps


def epoch_loader(dataset: RandomCropDataset, epoch: int, *, batch: int, world: int, rank: int,
                 start_batch: int = 0, workers: int = 0, pin_memory: bool = False) -> DataLoader:  # fmt: skip
    """Batches ``start_batch, start_batch + 1, …`` of this process's shard of ``epoch``."""
    indices = list(shard_sampler(dataset, world, rank, dataset.seed, epoch))
    keys = [(index, epoch) for index in indices[start_batch * batch : len(indices) // batch * batch]]
    return DataLoader(
        dataset, batch_size=batch, sampler=keys, num_workers=workers, collate_fn=collate_crops,
        pin_memory=pin_memory, drop_last=True,
        generator=torch.Generator().manual_seed(dataset.seed),  # leaves the global RNG alone
    )  # fmt: skip


def validation_crops(folder: str | os.PathLike, size: int, count: int) -> list[Tensor]:
    """Centre ``size × size`` crops ``(1, 3, size, size)`` in [0, 1] of the first ``count``
    readable images under ``folder`` (sorted by path) whose shorter side is at least ``size``."""
    crops: list[Tensor] = []
    for name in list_tree(folder):
        if len(crops) == count:
            break
        try:
            image = load_image(Path(folder) / name)
        except (ValueError, OSError):
            continue
        if min(image.size) < size:
            continue
        left, top = (image.width - size) // 2, (image.height - size) // 2
        array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
        crops.append(torch.from_numpy(array).permute(2, 0, 1)[None].contiguous())
    if not crops:
        raise ValueError(f"{folder}: no readable image with a side of at least {size} px for validation")
    return crops
