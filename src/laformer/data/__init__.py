"""Restoration datasets: image I/O, pairing, degradations, the dataset registry and LightningDataModules."""

from laformer.data.benchmark import BenchmarkDataModule
from laformer.data.checks import DataCheckError
from laformer.data.datamodule import RestorationDataModule
from laformer.data.datasets import DegradedImageDataset, ImagePair, ImageRef, PairedImageDataset
from laformer.data.demo import DemoDataModule
from laformer.data.io import ImageReadError, read_image, write_image
from laformer.data.layouts import LayoutError
from laformer.data.locate import DatasetNotFoundError
from laformer.data.pairing import PairingError
from laformer.data.registry import REGISTRY, DatasetSpec, get_spec

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
