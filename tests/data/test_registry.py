"""Every dataset in the registry, in each layout it accepts, written as a tiny copy under tmp_path.

The paths below are written out literally from the reference layouts (design/datasets.md), not generated
from the registry, so a registry layout that drifts from the real one fails here. Each image carries its
pair's code in its pixels (tests/data/coded.py): batches must decode to matching input and target codes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from omegaconf import OmegaConf

from laformer.data import REGISTRY, BenchmarkDataModule
from laformer.data.degradations import GaussianNoise
from laformer.data.io import write_image
from laformer.data.registry import get_spec
from laformer.metrics import EvalProtocol
from laformer.runs import config_dir
from tests.data.coded import coded_array, decode, decode_batch, write_coded

PATCH = 16


@dataclass
class Entry:
    """Files of one split of one benchmark, and the layout the data module must detect for them."""

    benchmark: str
    split: str
    layout: str
    pairs: list[tuple[str, str]] = field(default_factory=list)
    clean: list[str] = field(default_factory=list)
    blocks: tuple[str, str] | None = None  # SIDD .mat files (noisy, gt)


@dataclass
class Case:
    id: str
    name: str
    entries: list[Entry]
    root: str = ""
    lists: dict[str, list[str]] = field(default_factory=dict)
    kwargs: dict = field(default_factory=dict)
    target_size: tuple[int, int] | None = None
    bit_depth: int = 8


def same(inp: str, tgt: str, stems: list[str], ext: str = ".png", tgt_ext: str | None = None) -> list[tuple[str, str]]:
    return [(f"{inp}/{s}{ext}", f"{tgt}/{s}{tgt_ext or ext}") for s in stems]


def io(folder: str, stems: list[str], inp: str = "input", tgt: str = "target", ext: str = ".png"):
    return same(f"{folder}/{inp}", f"{folder}/{tgt}", stems, ext)


GOPRO_SCENES = ["GOPR0372_07_00", "GOPR0374_11_01"]


def gopro_official(split: str) -> list[tuple[str, str]]:
    # the same frame name in two scenes: pairing must stay inside each scene
    return [
        (f"GOPRO_Large/{split}/{scene}/blur/{n}.png", f"GOPRO_Large/{split}/{scene}/sharp/{n}.png")
        for scene in GOPRO_SCENES
        for n in ("000047", "000048")
    ]


def realblur_official(v: str, scenes: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    folder = (
        f"RealBlur-{v}_ECC_IMCORR_centroid_itensity_ref"
        if v == "J"
        else "RealBlur-R_BM3D_ECC_IMCORR_centroid_itensity_ref"
    )
    pairs = [
        (f"RealBlur/{folder}/{s}/blur/blur_{k}.png", f"RealBlur/{folder}/{s}/gt/gt_{k}.png")
        for s in scenes
        for k in (1, 2)
    ]
    lines = [f"{t.removeprefix('RealBlur/')} {i.removeprefix('RealBlur/')}" for i, t in pairs]  # gt first, as the lists
    return pairs, lines


RB_TRAIN, RB_TRAIN_LINES = realblur_official("J", ["scene001"])
RB_TEST, RB_TEST_LINES = realblur_official("J", ["scene230"])
RBR_TEST, RBR_TEST_LINES = realblur_official("R", ["scene244_reflect"])

RAIN_SETS = ["Rain100H", "Rain100L", "Test100", "Test1200", "Test2800"]
SIDD_SCENES = ["0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"]


def sidd_medium() -> list[tuple[str, str]]:
    pairs = []
    for scene in SIDD_SCENES:
        number = scene[:4]
        for tag in ("010", "011"):
            folder = f"SIDD_Medium_Srgb/Data/{scene}"
            pairs.append((f"{folder}/{number}_NOISY_SRGB_{tag}.PNG", f"{folder}/{number}_GT_SRGB_{tag}.PNG"))
    return pairs


CASES = [
    # -- motion deblurring --------------------------------------------------------------------------------------
    Case("gopro-official", "gopro", [Entry("gopro", s, "official", gopro_official(s)) for s in ("train", "test")]),
    Case(
        "gopro-restormer",
        "gopro",
        [
            Entry("gopro", s, "restormer", io(f"{s}/GoPro", ["GOPR0384_11_00-000001", "GOPR0384_11_00-000002"]))
            for s in ("train", "test")
        ],
    ),
    Case(
        "gopro-restormer-crops",
        "gopro",
        [
            Entry(
                "gopro",
                "train",
                "restormer-crops",
                io("train/GoPro", ["0001-1", "0001-2", "0002-1"], "input_crops", "target_crops"),
            ),
            Entry("gopro", "test", "restormer", io("test/GoPro", ["0001", "0002"])),
        ],
    ),
    Case(
        "gopro-input-target",
        "gopro",
        [Entry("gopro", s, "input-target", io(f"GoPro/{s}", ["1", "2"])) for s in ("train", "test")],
    ),
    Case(
        "gopro-with-hide-realblur",
        "gopro",
        [
            Entry("gopro", "train", "restormer", io("train/GoPro", ["a", "b"])),
            Entry("gopro", "test", "restormer", io("test/GoPro", ["a", "b"])),
            Entry("hide", "test", "restormer", io("test/HIDE", ["1fromGOPR0950", "29fromGOPR1096"])),
            Entry("realblur_j", "test", "restormer", io("test/RealBlur_J", ["scene230-blur_1", "scene230-blur_2"])),
            Entry("realblur_r", "test", "restormer", io("test/RealBlur_R", ["scene230-blur_1"])),
        ],
    ),
    Case(
        "hide-folder", "hide", [Entry("hide", "test", "input-target", io("HIDE", ["1fromGOPR0950", "2fromGOPR0950"]))]
    ),
    Case(
        "realblur-official",
        "realblur_j",
        [Entry("realblur_j", "train", "official", RB_TRAIN), Entry("realblur_j", "test", "official", RB_TEST)],
        lists={
            "RealBlur/RealBlur_J_train_list.txt": RB_TRAIN_LINES,
            "RealBlur/RealBlur_J_test_list.txt": RB_TEST_LINES,
        },
    ),
    Case(
        "realblur-official-datalist",
        "realblur_r",
        [Entry("realblur_r", "test", "official", RBR_TEST)],
        lists={"RealBlur/datalist/RealBlur_R_test_list.txt": RBR_TEST_LINES},
    ),
    Case("realblur-flat", "realblur_r", [Entry("realblur_r", "test", "flat", io("RealBlur-R", ["a", "b"]))]),
    Case(
        "realblur-input-target",
        "realblur_j",
        [Entry("realblur_j", s, "input-target", io(f"RealBlur_J/{s}", ["a", "b"])) for s in ("train", "test")],
    ),
    # -- defocus deblurring (16-bit) ----------------------------------------------------------------------------
    Case(
        "dpdd-official",
        "dpdd",
        [
            Entry(
                "dpdd",
                s,
                "official",
                same(
                    f"dd_dp_dataset_canon/{s}_c/source", f"dd_dp_dataset_canon/{s}_c/target", ["1P0A1020", "1P0A1031"]
                ),
            )
            for s in ("train", "val", "test")
        ],
        bit_depth=16,
    ),
    Case(
        "dpdd-restormer",
        "dpdd",
        [
            Entry("dpdd", s, "restormer", same(f"DPDD/{s}/inputC", f"DPDD/{s}/target", ["1", "2"]))
            for s in ("train", "val", "test")
        ],
        bit_depth=16,
    ),
    Case(
        "dpdd-restormer-datasets",
        "dpdd",
        [
            Entry(
                "dpdd",
                "train",
                "restormer-datasets",
                same("train/DPDD/inputC_crops", "train/DPDD/target_crops", ["1-1", "1-2"]),
            ),
            Entry("dpdd", "val", "restormer-datasets", same("val/DPDD/inputC_crops", "val/DPDD/target_crops", ["1"])),
            Entry("dpdd", "test", "restormer-datasets", same("test/DPDD/inputC", "test/DPDD/target", ["1", "2"])),
        ],
        bit_depth=16,
    ),
    # -- deraining ------------------------------------------------------------------------------------------------
    Case(
        "rain13k-restormer",
        "rain13k",
        [Entry("rain13k", "train", "restormer", io("train/Rain13K", ["1", "2"], ext=".jpg"))]
        + [Entry(s.lower(), "test", "restormer", io(f"test/{s}", ["1", "2"])) for s in RAIN_SETS],
    ),
    Case(
        "rain13k-folders",
        "rain13k",
        [Entry("rain13k", "train", "input-target", io("Rain13K", ["norain-1", "norain-2"]))]
        + [Entry(s.lower(), "test", "input-target", io(s, ["1"])) for s in RAIN_SETS],
    ),
    Case("rain100h-alone", "rain100h", [Entry("rain100h", "test", "input-target", io("Rain100H", ["1", "2", "3"]))]),
    # -- real denoising -------------------------------------------------------------------------------------------
    Case(
        "sidd-official",
        "sidd",
        [
            Entry("sidd", "train", "official", sidd_medium()),
            Entry(
                "sidd",
                "test",
                "official",
                blocks=("SIDD/ValidationNoisyBlocksSrgb.mat", "SIDD/ValidationGtBlocksSrgb.mat"),
            ),
        ],
    ),
    Case(
        "sidd-restormer",
        "sidd",
        [
            Entry(
                "sidd",
                "train",
                "restormer",
                io("train/SIDD", ["0001_NOISY_SRGB_010-1", "0001_NOISY_SRGB_010-2"], "input_crops", "target_crops"),
            ),
            Entry(
                "sidd",
                "test",
                "restormer",
                blocks=("test/SIDD/ValidationNoisyBlocksSrgb.mat", "test/SIDD/ValidationGtBlocksSrgb.mat"),
            ),
        ],
    ),
    Case(
        "sidd-nafnet",
        "sidd",
        [
            Entry(
                "sidd",
                "train",
                "nafnet",
                io("SIDD/train", ["0001_SRGB_010_s001", "0001_SRGB_010_s002"], "input_crops", "gt_crops", ".PNG"),
            ),
            Entry(
                "sidd",
                "test",
                "nafnet",
                blocks=("SIDD/val/ValidationNoisyBlocksSrgb.mat", "SIDD/val/ValidationGtBlocksSrgb.mat"),
            ),
        ],
    ),
    # -- Gaussian denoising (ground truth only) -------------------------------------------------------------------
    Case(
        "dfwb-restormer",
        "dfwb",
        [
            Entry(
                "dfwb", "train", "restormer", clean=["train/DFWB/DIV2K-0001-1.png", "train/DFWB/BSD400-test_001-1.png"]
            ),
            Entry("cbsd68", "test", "restormer", clean=["test/CBSD68/0000.png", "test/CBSD68/0001.png"]),
            Entry("kodak24", "test", "restormer", clean=["test/Kodak/kodim01.png"]),
            Entry("mcmaster", "test", "restormer", clean=["test/McMaster/1.tif", "test/McMaster/2.tif"]),
            Entry("urban100", "test", "restormer", clean=["test/Urban100/img001.png"]),
        ],
        kwargs={"degradation": GaussianNoise(25.0), "test_sigmas": [15, 50]},
    ),
    Case(
        "dfwb-downloads",
        "dfwb",
        [
            Entry(
                "dfwb",
                "train",
                "downloads",
                clean=[
                    "Downloads/DIV2K/0001.png",
                    "Downloads/Flickr2K/000001.png",
                    "Downloads/BSD400/test_001.png",
                    "Downloads/WaterlooED/00001.bmp",
                ],
            ),
            Entry("cbsd68", "test", "flat", clean=["CBSD68/0000.png"]),
            Entry("kodak24", "test", "flat", clean=["Kodak24/kodim01.png", "Kodak24/kodim02.png"]),
            Entry("mcmaster", "test", "flat", clean=["McMaster/1.tif"]),
            Entry("urban100", "test", "flat", clean=["Urban100/img001.png"]),
        ],
        kwargs={"degradation": GaussianNoise(50.0), "test_sigmas": [25]},
    ),
    Case(
        "kodak-alone",
        "kodak24",
        [Entry("kodak24", "test", "flat", clean=["Kodak/kodim01.png", "Kodak/kodim02.png"])],
        kwargs={"test_sigmas": [15]},
    ),
    # -- dehazing (many hazy images to one clear, clear released larger) -----------------------------------------
    Case(
        "reside-its-original",
        "reside_its",
        [
            Entry(
                "reside_its",
                "train",
                "original",
                [
                    ("RESIDE/ITS/hazy/1_1_0.90179.png", "RESIDE/ITS/clear/1.png"),
                    ("RESIDE/ITS/hazy/1_2_0.8.png", "RESIDE/ITS/clear/1.png"),
                    ("RESIDE/ITS/hazy/2_1_0.7.png", "RESIDE/ITS/clear/2.png"),
                ],
            ),
            Entry(
                "sots_indoor",
                "test",
                "original",
                [
                    ("RESIDE/SOTS/indoor/hazy/1400_1.png", "RESIDE/SOTS/indoor/clear/1400.png"),
                    ("RESIDE/SOTS/indoor/hazy/1400_10.png", "RESIDE/SOTS/indoor/clear/1400.png"),
                ],
            ),
        ],
        target_size=(28, 40),
    ),
    *(
        Case(
            f"sots-{long}-root-at-the-dataset-folder",
            f"sots_{long}",
            [
                Entry(
                    f"sots_{long}",
                    "test",
                    "original-folder",
                    [
                        (f"SOTS/{long}/hazy/{n}_1.png", f"SOTS/{long}/clear/{n}.png"),
                        (f"SOTS/{long}/hazy/{n}_2.png", f"SOTS/{long}/clear/{n}.png"),
                    ],
                )
            ],
            root=f"SOTS/{long}",
        )
        for long, n in (("indoor", "1400"), ("outdoor", "0001"))
    ),
    Case(
        "reside-its-dehazeformer",
        "reside_its",
        [
            Entry(
                "reside_its",
                "train",
                "dehazeformer",
                same("RESIDE-IN/train/hazy", "RESIDE-IN/train/GT", ["1_1", "1_2"]),
            ),
            Entry(
                "sots_indoor",
                "test",
                "dehazeformer",
                same("RESIDE-IN/test/hazy", "RESIDE-IN/test/GT", ["1400_1", "1401_1"]),
            ),
        ],
    ),
    Case(
        "reside-its-csnet",
        "reside_its",
        [
            Entry(
                "reside_its",
                "train",
                "dehazeformer",
                same("reside-indoor/train/hazy", "reside-indoor/train/gt", ["1_1", "2_1"]),
            ),
            Entry(
                "sots_indoor",
                "test",
                "dehazeformer",
                same("reside-indoor/test/hazy", "reside-indoor/test/gt", ["1400_1"]),
            ),
        ],
    ),
    Case(
        "reside-its-gunet",
        "reside_its",
        [
            Entry("reside_its", "train", "gunet", same("ITS/IN", "ITS/GT", ["1_1", "2_1"])),
            Entry("sots_indoor", "test", "gunet", same("SOTS-IN/IN", "SOTS-IN/GT", ["1400_1"])),
        ],
    ),
    Case(
        "reside-ots-original",
        "reside_ots",
        [
            Entry(
                "reside_ots",
                "train",
                "original",
                [
                    ("RESIDE/OTS/hazy/0005_0.8_0.04.jpg", "RESIDE/OTS/clear/0005.jpg"),
                    ("RESIDE/OTS/hazy/0005_1_0.2.jpg", "RESIDE/OTS/clear/0005.jpg"),
                ],
            ),
            Entry(
                "sots_outdoor",
                "test",
                "original",
                [
                    ("RESIDE/SOTS/outdoor/hazy/0001_0.8_0.2.jpg", "RESIDE/SOTS/outdoor/clear/0001.png"),
                    ("RESIDE/SOTS/outdoor/hazy/0002_0.8_0.2.jpg", "RESIDE/SOTS/outdoor/clear/0002.png"),
                ],
            ),
        ],
    ),
    Case(
        "reside-ots-dehazeformer",
        "reside_ots",
        [
            Entry(
                "reside_ots",
                "train",
                "dehazeformer",
                same("RESIDE-OUT/train/hazy", "RESIDE-OUT/train/GT", ["0005_0.8_0.04"]),
            ),
            Entry(
                "sots_outdoor",
                "test",
                "dehazeformer",
                same("RESIDE-OUT/test/hazy", "RESIDE-OUT/test/GT", ["0001_0.8_0.2"]),
            ),
        ],
    ),
    # -- low-light -----------------------------------------------------------------------------------------------
    Case(
        "lolv1-official",
        "lolv1",
        [
            Entry("lolv1", s, "official", io(f"LOL/{d}", ["2", "5"], "low", "high"))
            for s, d in (("train", "our485"), ("test", "eval15"))
        ],
    ),
    Case(
        "lolv1-retinexformer",
        "lolv1",
        [
            Entry("lolv1", s, "retinexformer", io(f"LOLv1/{d}", ["111", "146"]))
            for s, d in (("train", "Train"), ("test", "Test"))
        ],
    ),
    Case(
        "lolv1-uhdfour",
        "lolv1",
        [
            Entry("lolv1", s, "uhdfour", io(f"LOL-v1/{d}", ["1", "2"], "input", "gt"))
            for s, d in (("train", "our485"), ("test", "eval15"))
        ],
    ),
    Case(
        "lolv2-real-official",
        "lolv2_real",
        [
            Entry(
                "lolv2_real",
                s,
                "official",
                [
                    (f"LOLv2/Real_captured/{d}/Low/low{n}.png", f"LOLv2/Real_captured/{d}/Normal/normal{n}.png")
                    for n in ("00690", "00691")
                ],
            )
            for s, d in (("train", "Train"), ("test", "Test"))
        ],
    ),
    Case(
        "lolv2-real-renamed",
        "lolv2_real",
        [
            Entry(
                "lolv2_real",
                s,
                "official",
                same(f"LOLv2/Real_captured/{d}/Low", f"LOLv2/Real_captured/{d}/Normal", ["00690", "00001"]),
            )
            for s, d in (("train", "Train"), ("test", "Test"))
        ],
    ),
    Case(
        "lolv2-synthetic-subset",
        "lolv2_synthetic",
        [
            Entry(
                "lolv2_synthetic",
                s,
                "official-subset",
                same(f"LOL-v2/Synthetic/{d}/Low", f"LOL-v2/Synthetic/{d}/Normal", ["r00816405t", "r0a2c5b5bt"]),
            )
            for s, d in (("train", "Train"), ("test", "Test"))
        ],
        root="LOL-v2/Synthetic",  # the root is the subset folder itself
    ),
    # -- UHD -----------------------------------------------------------------------------------------------------
    Case(
        "uhd-ll",
        "uhd_ll",
        [
            Entry("uhd_ll", s, "uhddip", io(f"UHD-LL/{d}", ["1_UHD_LL", "2_UHD_LL"], "input", "gt", ".JPG"))
            for s, d in (("train", "training_set"), ("test", "testing_set"))
        ],
    ),
    Case(
        "uhd-haze-4kid",
        "uhd_haze",
        [Entry("uhd_haze", s, "uhdformer", io(f"4KID/{s}", ["1", "2"], "input", "gt")) for s in ("train", "test")],
    ),
    Case(
        "uhd-blur-val",
        "uhd_blur",
        [
            Entry("uhd_blur", s, layout, io(f"UHD-Blur/{d}", ["1", "2"], "input", "gt"))
            for s, d, layout in (("train", "training_set", "uhddip"), ("test", "val", "uhddip-val"))
        ],
    ),
    Case(
        "uhd-rain",
        "uhd_rain",
        [
            Entry("uhd_rain", s, "udr-mixer", io(f"4K-Rain13k/{d}", ["1", "2"]))
            for s, d in (("train", "Train"), ("test", "Test"))
        ],
    ),
]


def view_paths(input_path: str) -> list[str]:
    """Where DPDD's left/right views of a centre-view input lie, in the three layouts."""
    if "_c/source" in input_path:
        return [input_path.replace("_c/source", "_l/source"), input_path.replace("_c/source", "_r/source")]
    return [input_path.replace("inputC", "inputL"), input_path.replace("inputC", "inputR")]


def write_case(case: Case, root: Path) -> dict[tuple[str, str], set[int]]:
    """Write the case's files; return the codes written per (benchmark, split)."""
    codes: dict[str, int] = {}
    written: dict[tuple[str, str], set[int]] = defaultdict(set)
    for entry in case.entries:
        key = (entry.benchmark, entry.split)
        for inp, tgt in entry.pairs:
            if tgt not in codes:
                codes[tgt] = len(codes)
                write_coded(root / tgt, codes[tgt], True, case.target_size or (24, 32), case.bit_depth)
            write_coded(root / inp, codes[tgt], False, bit_depth=case.bit_depth)
            if case.name == "dpdd":
                for view in view_paths(inp):
                    write_coded(root / view, codes[tgt], False, bit_depth=case.bit_depth)
            written[key].add(codes[tgt])
        for path in entry.clean:
            codes[path] = len(codes)
            write_coded(root / path, codes[path], True)
            written[key].add(codes[path])
        if entry.blocks:
            base = len(codes)
            noisy = np.stack([np.stack([coded_array(base + 2 * i + k, False) for k in range(2)]) for i in range(2)])
            gt = np.stack([np.stack([coded_array(base + 2 * i + k, True) for k in range(2)]) for i in range(2)])
            for path, key_name, array in (
                (entry.blocks[0], "ValidationNoisyBlocksSrgb", noisy),
                (entry.blocks[1], "ValidationGtBlocksSrgb", gt),
            ):
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                scipy.io.savemat(root / path, {key_name: array})
            written[key] |= {base + j for j in range(4)}
            codes.update({f"block{j}": base + j for j in range(4)})
    for path, lines in case.lists.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("\n".join(lines) + "\n")
    return written


def _module(case: Case, root: Path, **extra) -> BenchmarkDataModule:
    tests = list(dict.fromkeys(e.benchmark for e in case.entries if e.split == "test"))
    return BenchmarkDataModule(
        case.name,
        root=str(root / case.root),
        test_sets=tests,
        patch_size=PATCH,
        batch_size=2,
        repeat=2,
        num_workers=0,
        channels=3,
        **(case.kwargs | extra),
    )


def _check_clean(batch: dict, sigma_range: tuple[float, float] = (5, 60)) -> list[int]:
    """Ground-truth-only items: the target is a written image, the input that image plus Gaussian noise."""
    found = []
    for inp, tgt in zip(batch["input"], batch["target"]):
        code, is_target = decode(tgt)
        assert is_target
        std = (inp - tgt).std().item() * 255
        assert sigma_range[0] * 0.75 < std < sigma_range[1] * 1.25
        found.append(code)
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layout_is_detected_and_batches_are_paired(case: Case, tmp_path: Path) -> None:
    written = write_case(case, tmp_path)
    module = _module(case, tmp_path)
    clean = get_spec(case.name).kind == "clean"

    for entry in case.entries:  # layout detection and counts, per split
        found, content = module.content(entry.benchmark, entry.split)
        assert found.layout.name == entry.layout, (entry.benchmark, entry.split)
        assert len(content) == len(entry.pairs) + len(entry.clean) + (4 if entry.blocks else 0)

    splits = {(e.benchmark, e.split) for e in case.entries}
    if (case.name, "train") in splits:
        module.setup("fit")
        seen = set()
        for batch in module.train_dataloader():
            assert batch["input"].shape[-2:] == (PATCH, PATCH)
            if clean:
                seen |= set(_check_clean(batch))
            else:
                for ci, ct in decode_batch(batch):
                    assert ci == ct
                    seen.add(ct)
        assert seen <= written[(case.name, "train")] and seen
        for batch in module.val_dataloader():
            if clean:
                _check_clean(batch)
            else:
                assert all(ci == ct for ci, ct in decode_batch(batch))

    module.setup("test")
    loaders = module.test_dataloader()
    assert len(loaders) == len(module.protocols)
    for loader in loaders:
        codes, set_names = set(), set()
        for batch in loader:
            set_names.add(batch["set"][0])
            if clean:
                codes |= set(_check_clean(batch))
            else:
                for ci, ct in decode_batch(batch):
                    assert ci == ct
                    codes.add(ct)
        (set_name,) = set_names
        benchmark = next(b for b in module.test_sets if set_name in module.set_names(b))
        assert codes == written[(benchmark, "test")], set_name


def test_dual_pixel_input_stacks_left_and_right_views(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "dpdd-official")
    write_case(case, tmp_path)
    # make the right view distinguishable: its green level marks it
    right = tmp_path / "dd_dp_dataset_canon/test_r/source/1P0A1020.png"
    image = torch.zeros(3, 24, 32)
    image[1] = 1.0
    write_image(right, image, bit_depth=16)
    module = _module(case, tmp_path, dual_pixel=True)
    module.setup("test")
    items = {b["name"][0]: b for b in module.test_dataloader()[0]}
    batch = items["1P0A1020"]
    assert batch["input"].shape == (1, 6, 24, 32) and batch["target"].shape == (1, 3, 24, 32)
    assert decode(batch["input"][0, :3])[0] == decode(batch["target"][0])[0]  # left view: the pair's code
    assert batch["input"][0, 4].min().item() == 1.0  # right view as written


def test_resides_larger_clear_images_are_centre_cropped_to_the_hazy_size(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "reside-its-original")
    write_case(case, tmp_path)
    module = _module(case, tmp_path)
    module.setup("test")
    for batch in module.test_dataloader()[0]:
        assert batch["input"].shape == batch["target"].shape == (1, 3, 24, 32)


def test_gopro_validation_is_the_centre_crop_of_the_test_set(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for i in range(2):
            write_coded(tmp_path / f"{split}/GoPro/input/{i}.png", i, False, (300, 320))
            write_coded(tmp_path / f"{split}/GoPro/target/{i}.png", i, True, (300, 320))
    module = BenchmarkDataModule("gopro", root=str(tmp_path), patch_size=PATCH, batch_size=2, num_workers=0)
    module.setup("validate")
    batches = list(module.val_dataloader())
    assert len(batches) == 2
    assert all(b["input"].shape[-2:] == (256, 256) for b in batches)
    assert [decode_batch(b) for b in batches] == [[(0, 0)], [(1, 1)]]


def test_clean_test_sets_are_identical_across_runs_and_seeded_per_image(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "kodak-alone")
    write_case(case, tmp_path)

    def noise() -> list[torch.Tensor]:
        dataset = _module(case, tmp_path)._whole_images("kodak24", "test", "Kodak24-s15", 15.0)
        return [dataset[i]["input"] - dataset[i]["target"] for i in range(len(dataset))]

    first, second = noise(), noise()
    assert len(first) == 2
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.allclose(first[0], first[1])  # each image its own seed
    assert first[0].std().item() * 255 == pytest.approx(15, rel=0.15)


def test_every_registry_entry_has_a_config_with_its_protocol() -> None:
    for name, spec in REGISTRY.items():
        path = Path(config_dir(), "data", f"{name}.yaml")
        assert path.is_file(), f"conf/data/{name}.yaml is missing"
        config = OmegaConf.load(path)
        assert config.name == name
        protocol = EvalProtocol(**{k: v for k, v in config.protocol.items() if k != "_target_"})
        assert protocol == spec.protocol, name


def test_test_sets_with_their_own_protocol_keep_it(tmp_path: Path) -> None:
    module = BenchmarkDataModule("gopro", root=str(tmp_path), protocol=EvalProtocol(crop_border=3))
    protocols = module.protocols
    assert protocols["GoPro"].crop_border == 3 and protocols["HIDE"].crop_border == 3  # scored like GoPro
    assert protocols["RealBlur-J"].align == "ecc" and protocols["RealBlur-J"].crop_border == 0
    dfwb = BenchmarkDataModule("dfwb", root=str(tmp_path), test_sigmas=[15, 50])
    assert list(dfwb.protocols)[:2] == ["CBSD68-s15", "CBSD68-s50"] and len(dfwb.protocols) == 8


def test_unknown_names_list_the_registry() -> None:
    with pytest.raises(KeyError, match="gopro"):
        BenchmarkDataModule("go-pro", root="/x")
    with pytest.raises(KeyError, match="rain100h"):
        BenchmarkDataModule("rain13k", root="/x", test_sets=["rain100"])
