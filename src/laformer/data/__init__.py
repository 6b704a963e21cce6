"""Restoration datasets: image I/O, pairing, degradations, the dataset registry and LightningDataModules.

The three LightningDataModules are imported when first asked for (``laformer.data.DemoDataModule``): reading an
image through ``laformer.data.io`` imports this package, and restoring a photo must not import Lightning.
"""

import importlib
from typing import TYPE_CHECKING, Any

from laformer.data.checks import DataCheckError
from laformer.data.datasets import DegradedImageDataset, ImagePair, ImageRef, PairedImageDataset
from laformer.data.io import ImageReadError, read_image, write_image
from laformer.data.layouts import LayoutError
from laformer.data.locate import DatasetNotFoundError
from laformer.data.pairing import PairingError
from laformer.data.registry import REGISTRY, DatasetSpec, get_spec

if TYPE_CHECKING:  # for type checkers and the API pages; at run time through __getattr__ below
    from laformer.data.benchmark import BenchmarkDataModule
    from laformer.data.datamodule import RestorationDataModule
    from laformer.data.demo import DemoDataModule

# The LightningDataModules, by the module that defines each (imported on first use: they import Lightning).
_DATA_MODULES = {
    "BenchmarkDataModule": "laformer.data.benchmark",
    "DemoDataModule": "laformer.data.demo",
    "RestorationDataModule": "laformer.data.datamodule",
}


def __getattr__(name: str) -> Any:
    if name in _DATA_MODULES:
        return getattr(importlib.import_module(_DATA_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "REGISTRY",
    "BenchmarkDataModule",
    "DataCheckError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "DegradedImageDataset",
    "DemoDataModule",
    "ImagePair",
    "ImageReadError",
    "ImageRef",
    "LayoutError",
    "PairedImageDataset",
    "PairingError",
    "RestorationDataModule",
    "get_spec",
    "read_image",
    "write_image",
]
