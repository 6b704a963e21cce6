"""The bundled demo: natural photos and textures shipped inside scikit-image, plus procedural dead-leaves
pictures, degraded on the fly. No download.

Three fixed splits of whole photos (a scene is never in two of them):

- ``DEMO_TRAIN``: what the network trains on (random crops), mixed with procedural pictures
  (``procedural_ratio`` of the training samples).
- ``DEMO_VAL``: validation, scored during training; the best checkpoint and any setting of the demo are chosen
  on it.
- ``DEMO_TEST``: the held-out test set, scored by ``trainer.test`` (``test_after_fit=true`` in experiment=demo)
  and reported as the demo's result. Nothing was chosen by looking at it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import skimage.data
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset

from laformer.data.datamodule import RestorationDataModule
from laformer.data.datasets import DegradedImageDataset, ImageRef
from laformer.data.degradations import GaussianNoise
from laformer.data.procedural import PROCEDURAL_SOURCES, ProceduralImageDataset

# Every natural photo and texture in skimage.data that is a file inside the installed package (no pooch
# download), with what it shows. Grey ones are replicated to RGB for a colour model (``channels=3``).
# Left out: synthetic or scientific images (astronomy, microscopy, retina, phantoms, colour wheel, logos),
# the scanned text ``page``, ``clock`` (motion-blurred: no clean target) and the 25 x 25 ``lfw_subset`` faces.
BUNDLED_PHOTOS: dict[str, str] = {
    "astronaut": "colour 512x512: portrait (face), orange suit, flag",
    "chelsea": "colour 300x451: a cat's face (animal, fur, eyes)",
    "coffee": "colour 400x600: cup of coffee on a saucer, wood, indoor light",
    "rocket": "colour 427x640: rocket on the launch pad at night, dark sky, lights",
    "motorcycle": "colour 500x741: motorcycle in a workshop (stereo pair, left view)",
    "motorcycle_right": "colour 500x741: the same scene, right view",
    "camera": "grey 512x512: cameraman; face, coat, bright sky, grass",
    "coins": "grey 303x384: Greek coins on a dark ground",
    "moon": "grey 256x256: lunar surface, craters (skimage's 512x512 file doubles every pixel; read at 256)",
    "text": "grey 172x448: chalk writing on a stone slab",
    "brick": "grey 512x512: texture, brick wall",
    "grass": "grey 512x512: texture, grass (foliage)",
    "gravel": "grey 512x512: texture, gravel",
}
# Views of one scene, which must stay in one split.
SCENES: dict[str, str] = {"motorcycle_right": "motorcycle"}

DEMO_TRAIN = ("motorcycle", "motorcycle_right", "moon", "text", "brick")
DEMO_VAL = ("coffee", "coins", "gravel")
# Held out: face, animal, night sky and lights, foliage texture, bright sky; colour and grey.
DEMO_TEST = ("astronaut", "chelsea", "rocket", "grass", "camera")
# Test image i is degraded with seed + TEST_SEED_OFFSET + i, so its noise never repeats a validation image's.
TEST_SEED_OFFSET = 10_000


def load_demo_photo(name: str) -> np.ndarray:
    """A bundled photo by name (``BUNDLED_PHOTOS``, or any other ``skimage.data`` image), as stored: uint8."""
    if name in ("motorcycle", "motorcycle_right"):
        return skimage.data.stereo_motorcycle()[0 if name == "motorcycle" else 1]
    if name == "moon":
        return np.ascontiguousarray(skimage.data.moon()[::2, ::2])  # each pixel is stored as a 2 x 2 block
    loader = getattr(skimage.data, name, None)
    if loader is None or not callable(loader):
        raise ValueError(f"no bundled photo named {name!r}; the natural ones are {sorted(BUNDLED_PHOTOS)}")
    return loader()


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    top, left = max(0, (image.shape[0] - size) // 2), max(0, (image.shape[1] - size) // 2)
    return image[top : top + size, left : left + size]


def demo_refs(names: tuple[str, ...], crop: int | None = None) -> list[ImageRef]:
    refs = [ImageRef(name=name, array=load_demo_photo(name)) for name in names]
    return [ImageRef(r.name, array=center_crop(r.array, crop)) for r in refs] if crop else refs


def check_disjoint(splits: dict[str, tuple[str, ...]]) -> None:
    """Refuse a photo (or another view of its scene) in two splits, or twice in one."""
    seen: dict[str, tuple[str, str]] = {}
    for split, names in splits.items():
        for name in names:
            scene = SCENES.get(name, name)
            if scene in seen and seen[scene][0] != split:
                other_split, other = seen[scene]
                what = f"photos {sorted({other, name})}" if other != name else f"photos [{name!r}]"
                raise ValueError(
                    f"{what} are in both the {other_split} and {split} split (one scene): "
                    "a photo the model trains or is tuned on cannot score it"
                )
            seen[scene] = (split, name)


class DemoDataModule(RestorationDataModule):
    """Train on bundled photos plus procedural pictures; validate and test on two other fixed sets of whole photos.

    Args:
        degradation: callable ``(clean_batch, generator) -> degraded``; by default Gaussian noise sigma 25,
            clipped and stored as 8-bit, as a noisy PNG holds it.
        channels: 3 (RGB; grey photos are replicated) or 1 (colour photos converted to grey).
        seed: seed of the validation and test degradations (validation image i: ``seed + i``; test image i:
            ``seed + TEST_SEED_OFFSET + i``).
        train_photos / val_photos / test_photos: names from ``BUNDLED_PHOTOS`` (see ``DEMO_TRAIN``,
            ``DEMO_VAL``, ``DEMO_TEST``); no scene may be in two splits. An empty ``test_photos`` makes
            ``trainer.test`` score the validation set alone.
        procedural: ``dead_leaves`` mixes seeded dead-leaves pictures into training; None trains on photos only.
        procedural_ratio: the fraction of each training epoch's samples that are procedural, in [0, 1). An epoch
            holds ``len(train_photos) * repeat`` photo crops plus as many procedural pictures as this asks.
        val_crop / test_crop: score the centre ``crop`` x ``crop`` of each validation (test) photo instead of the
            whole photo: BM3D anchors and quadratic softmax attention take long on whole photos on a CPU (the demo
            config uses 256). None (default) scores whole images.
    """

    def __init__(
        self,
        degradation: Callable[..., Tensor] | None = None,
        channels: int = 3,
        seed: int = 0,
        train_photos: tuple[str, ...] = DEMO_TRAIN,
        val_photos: tuple[str, ...] = DEMO_VAL,
        test_photos: tuple[str, ...] = DEMO_TEST,
        procedural: str | None = None,
        procedural_ratio: float = 0.0,
        val_crop: int | None = None,
        test_crop: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.degradation = degradation or GaussianNoise(25.0, clip=True, quantize=8)
        self.channels, self.seed = channels, seed
        self.train_photos, self.val_photos = tuple(train_photos), tuple(val_photos)
        self.test_photos = tuple(test_photos or ())
        self.val_crop, self.test_crop = val_crop, test_crop
        check_disjoint({"training": self.train_photos, "validation": self.val_photos, "test": self.test_photos})
        if procedural is not None and procedural not in PROCEDURAL_SOURCES:
            raise ValueError(f"data.procedural must be one of {sorted(PROCEDURAL_SOURCES)} or null, got {procedural!r}")
        if not 0.0 <= procedural_ratio < 1.0:
            raise ValueError(f"data.procedural_ratio must be in [0, 1), got {procedural_ratio}")
        if procedural_ratio > 0 and procedural is None:
            raise ValueError("data.procedural_ratio > 0 needs a data.procedural source (e.g. dead_leaves)")
        self.procedural, self.procedural_ratio = procedural, procedural_ratio

    def procedural_count(self, photo_samples: int) -> int:
        """Procedural samples per epoch beside ``photo_samples`` photo crops, for ``procedural_ratio``."""
        if not self.procedural or self.procedural_ratio <= 0:
            return 0
        return max(1, round(photo_samples * self.procedural_ratio / (1.0 - self.procedural_ratio)))

    def train_dataset(self) -> Dataset:
        photos = DegradedImageDataset(
            demo_refs(self.train_photos),
            self.degradation,
            set_name="demo-train",
            patch_size=self.patch_size,
            small_image=self.small_image,
            repeat=self.repeat,
            channels=self.channels,
        )
        count = self.procedural_count(len(photos))
        if not count:
            return photos
        procedural = ProceduralImageDataset(
            PROCEDURAL_SOURCES[self.procedural](),
            self.degradation,
            patch_size=self.patch_size,
            length=count,
            set_name="demo-train",
            channels=self.channels,
            name=self.procedural,
        )
        return ConcatDataset([photos, procedural])

    def val_dataset(self) -> DegradedImageDataset:
        return DegradedImageDataset(
            demo_refs(self.val_photos, self.val_crop),
            self.degradation,
            set_name="demo-val",
            seed=self.seed,
            channels=self.channels,
        )

    def test_dataset(self) -> DegradedImageDataset:
        """The held-out photos (``test_photos``), seeded apart from validation."""
        return DegradedImageDataset(
            demo_refs(self.test_photos, self.test_crop),
            self.degradation,
            set_name="demo-test",
            seed=self.seed + TEST_SEED_OFFSET,
            channels=self.channels,
        )

    def test_datasets(self) -> dict[str, Dataset]:
        """``demo-val`` (the validation photos again, e.g. for the best checkpoint) and ``demo-test``, the
        held-out set; metrics are logged as ``test/demo-val/...`` and ``test/demo-test/...``."""
        sets: dict[str, Dataset] = {"demo-val": self.val_dataset()}
        if self.test_photos:
            sets["demo-test"] = self.test_dataset()
        return sets
