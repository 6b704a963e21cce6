"""Restoration datasets: image I/O, pairing, degradations and LightningDataModules."""

from laformer.data.datamodule import RestorationDataModule
from laformer.data.datasets import DegradedImageDataset, ImagePair, ImageRef, PairedImageDataset
from laformer.data.demo import DemoDataModule
from laformer.data.io import ImageReadError, read_image, write_image

__all__ = [
    "DegradedImageDataset",
    "DemoDataModule",
    "ImagePair",
    "ImageReadError",
    "ImageRef",
    "PairedImageDataset",
    "RestorationDataModule",
    "read_image",
    "write_image",
]
