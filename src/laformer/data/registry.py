"""Every benchmark the suite knows: its layouts on disk, how it is scored, where it is published.

One declarative ``DatasetSpec`` per ``data=NAME``. Layouts follow the reference code of each benchmark
(notes in ``design/datasets.md``): the official release, Restormer's ``Datasets/{train,test}/<Name>/
{input,target}`` tree, and the copies other reference repositories make. A split is found by trying, for each
candidate folder (the root, then the root's sub-folder named like the dataset), each layout in order.

Protocols pick one evaluator per benchmark where the field's disagree; ``notes`` say which and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from laformer.data.layouts import CleanFolders, DndFolder, Folders, Layout, ListFile, MatBlocks
from laformer.data.pairing import PrefixBefore, Replace
from laformer.metrics.protocol import EvalProtocol

KINDS = ("paired", "clean", "predict")


@dataclass(frozen=True)
class ValSplit:
    """Where validation images come from, stated in the registry rather than hidden in a loader.

    ``benchmark``: another registry entry's test split (Rain13K validates on Rain100L); None = this dataset.
    ``split``: which split of it (``test`` unless the dataset ships a ``val`` split). ``center_crop``: score
    only the centre square of each image (GoPro: 256, as Restormer's validation crops).
    """

    benchmark: str | None = None
    split: str = "test"
    center_crop: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark or training set.

    kind: ``paired`` (stored input/target pairs), ``clean`` (ground truth only; inputs synthesised by the
        data module, e.g. Gaussian noise) or ``predict`` (no public ground truth, e.g. DND: prediction only).
    aliases: folder names the dataset usually sits in, tried under the root.
    tests: benchmarks a data module on this dataset scores by default (the task's test sets).
    size_mismatch: ``center_crop_target`` where targets are released larger than inputs (RESIDE).
    """

    name: str
    title: str
    task: str
    url: str
    reference: str
    layouts: tuple[Layout, ...]
    protocol: EvalProtocol
    aliases: tuple[str, ...] = ()
    kind: str = "paired"
    tests: tuple[str, ...] = ()
    val: ValSplit = ValSplit()
    size_mismatch: str = "error"
    notes: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")

    def splits(self) -> list[str]:
        seen: list[str] = []
        for layout in self.layouts:
            seen += [s for s in layout.splits if s not in seen]
        return seen

    def has_split(self, split: str) -> bool:
        return any(split in layout.splits for layout in self.layouts)


def _io(name: str, dirs: dict[str, str], inp: str = "input", tgt: str = "target", rule=None) -> Layout:
    """A layout keeping each split as ``<dir>/{inp,tgt}`` folders (Restormer's shape)."""
    kwargs = {"rule": rule} if rule is not None else {}
    splits = {split: Folders(f"{d}/{inp}".lstrip("/"), f"{d}/{tgt}".lstrip("/"), **kwargs) for split, d in dirs.items()}
    return Layout(name, splits)


def _test_only(folder: str, inp: str = "input", tgt: str = "target") -> tuple[Layout, ...]:
    """Restormer's ``test/<folder>/{input,target}``, or that folder itself as the root."""
    return (_io("restormer", {"test": f"test/{folder}"}, inp, tgt), _io("input-target", {"test": ""}, inp, tgt))


# -- scoring protocols (one per benchmark family; see notes) --------------------------------------------------
RGB_8BIT = EvalProtocol(color="rgb", crop_border=0, quantize=True)
RGB_FLOAT = EvalProtocol(color="rgb", crop_border=0, quantize=False)
Y_8BIT = EvalProtocol(color="y", crop_border=0, quantize=True)
REALBLUR = EvalProtocol(color="rgb", crop_border=0, quantize=True, align="ecc")
UHD = EvalProtocol(color="y", crop_border=1, quantize=True)
RAIN_4K = EvalProtocol(color="y", crop_border=4, quantize=True, size_policy="center_crop", size_multiple=16)

RESTORMER_DEBLUR = "https://github.com/swz30/Restormer (Motion_Deblurring/download_data.py)"

SPECS: tuple[DatasetSpec, ...] = (
    # -- motion deblurring ----------------------------------------------------------------------------------
    DatasetSpec(
        name="gopro",
        title="GoPro",
        task="motion deblurring",
        url="https://seungjunnah.github.io/Datasets/gopro ; Restormer's copy: " + RESTORMER_DEBLUR,
        reference="Nah, Kim, Lee: Deep multi-scale CNN for dynamic scene deblurring, CVPR 2017",
        aliases=("GoPro", "GOPRO_Large", "GoPro_Large"),
        layouts=(
            Layout(
                "official",
                {
                    "train": Folders("train/{scene}/blur", "train/{scene}/sharp"),
                    "test": Folders("test/{scene}/blur", "test/{scene}/sharp"),
                },
            ),
            _io("restormer", {"train": "train/GoPro", "test": "test/GoPro"}),
            _io("restormer-crops", {"train": "train/GoPro"}, "input_crops", "target_crops"),
            _io("input-target", {"train": "train", "test": "test"}),
        ),
        protocol=RGB_8BIT,
        tests=("gopro", "hide", "realblur_j", "realblur_r"),
        val=ValSplit(center_crop=256),
        notes="RGB on 8-bit images, no border; 2-D Gaussian SSIM per channel (Restormer's MATLAB script uses 3-D "
        "SSIM, slightly different). Validation: centre 256x256 of every GoPro test image, as Restormer's.",
    ),
    DatasetSpec(
        name="hide",
        title="HIDE",
        task="motion deblurring",
        url="https://github.com/joanshen0508/HA_deblur ; Restormer's copy: " + RESTORMER_DEBLUR,
        reference="Shen et al.: Human-aware motion deblurring, ICCV 2019",
        aliases=("HIDE", "HIDE_dataset"),
        layouts=_test_only("HIDE"),
        protocol=RGB_8BIT,
        notes="Test only (models trained on GoPro); scored as GoPro.",
    ),
    *(
        DatasetSpec(
            name=f"realblur_{v.lower()}",
            title=f"RealBlur-{v}",
            task="motion deblurring",
            url="http://cg.postech.ac.kr/research/realblur/ ; layout and evaluation: https://github.com/rimchang/RealBlur",
            reference="Rim, Lee, Won, Cho: Real-world blur dataset for learning and benchmarking deblurring "
            "algorithms, ECCV 2020",
            aliases=("RealBlur", f"RealBlur_{v}", f"RealBlur-{v}"),
            layouts=(
                Layout(
                    "official",
                    {
                        split: ListFile((f"RealBlur_{v}_{split}_list.txt", f"datalist/RealBlur_{v}_{split}_list.txt"))
                        for split in ("train", "test")
                    },
                ),
                _io("restormer", {"test": f"test/RealBlur_{v}"}),
                _io("input-target", {"train": "train", "test": "test"}),
                _io("flat", {"test": ""}),
            ),
            protocol=REALBLUR,
            val=ValSplit(center_crop=256),
            notes="RealBlur's own evaluation: ECC homography alignment of the (8-bit) restoration onto the target, "
            "PSNR and Gaussian SSIM over the aligned support only.",
        )
        for v in ("J", "R")
    ),
    # -- defocus deblurring ---------------------------------------------------------------------------------
    DatasetSpec(
        name="dpdd",
        title="DPDD",
        task="defocus deblurring",
        url="https://github.com/Abdullah-Abuolaim/defocus-deblurring-dual-pixel ; Restormer's copy: "
        "https://github.com/swz30/Restormer (Defocus_Deblurring/download_data.py)",
        reference="Abuolaim, Brown: Defocus deblurring using dual-pixel data, ECCV 2020",
        aliases=("DPDD", "dd_dp_dataset_canon", "dd_dp_dataset_png"),
        layouts=(
            Layout(
                "official",
                {
                    s: Folders(f"{s}_c/source", f"{s}_c/target", views=(f"{s}_l/source", f"{s}_r/source"))
                    for s in ("train", "val", "test")
                },
            ),
            Layout(
                "restormer",
                {
                    split: Folders(f"{split}/inputC", f"{split}/target", views=(f"{split}/inputL", f"{split}/inputR"))
                    for split in ("train", "val", "test")
                },
            ),
            Layout(
                "restormer-datasets",
                {
                    "train": Folders(
                        "train/DPDD/inputC_crops",
                        "train/DPDD/target_crops",
                        views=("train/DPDD/inputL_crops", "train/DPDD/inputR_crops"),
                    ),
                    "val": Folders(
                        "val/DPDD/inputC_crops",
                        "val/DPDD/target_crops",
                        views=("val/DPDD/inputL_crops", "val/DPDD/inputR_crops"),
                    ),
                    "test": Folders(
                        "test/DPDD/inputC", "test/DPDD/target", views=("test/DPDD/inputL", "test/DPDD/inputR")
                    ),
                },
            ),
        ),
        protocol=RGB_FLOAT,
        val=ValSplit(split="val"),
        notes="16-bit PNGs kept at 16 bit; RGB PSNR on float images as Restormer's DPDD test; Gaussian SSIM (Restormer "
        "reports skimage's uniform-window SSIM). data.dual_pixel=true stacks the left and right views (6 channels).",
    ),
    # -- deraining ------------------------------------------------------------------------------------------
    DatasetSpec(
        name="rain13k",
        title="Rain13K",
        task="deraining",
        url="https://github.com/swz30/Restormer (Deraining/download_data.py; the MPRNet collection)",
        reference="Zamir et al.: Multi-stage progressive image restoration, CVPR 2021 (the Rain13K collection)",
        aliases=("Rain13K", "Rain13k"),
        layouts=(_io("restormer", {"train": "train/Rain13K"}), _io("input-target", {"train": ""})),
        protocol=Y_8BIT,
        tests=("rain100h", "rain100l", "test100", "test1200", "test2800"),
        val=ValSplit(benchmark="rain100l"),
        notes="Y channel (BT.601, MATLAB constants) on 8-bit images, no border, as Restormer's evaluate_PSNR_SSIM.m "
        "(which rounds Y to uint8; we keep Y unrounded). Validation on Rain100L, as Restormer.",
    ),
    *(
        DatasetSpec(
            name=folder.lower(),
            title=folder,
            task="deraining",
            url="https://github.com/swz30/Restormer (Deraining/download_data.py)",
            reference="deraining test set of the Rain13K collection (Zamir et al., CVPR 2021)",
            aliases=(folder,),
            layouts=_test_only(folder),
            protocol=Y_8BIT,
            notes="Test only; scored as Rain13K.",
        )
        for folder in ("Rain100H", "Rain100L", "Test100", "Test1200", "Test2800")
    ),
    # -- real denoising -------------------------------------------------------------------------------------
    DatasetSpec(
        name="sidd",
        title="SIDD",
        task="real denoising",
        url="https://www.eecs.yorku.ca/~kamel/sidd/ (SIDD-Medium sRGB; validation .mat blocks)",
        reference="Abdelhamed, Lin, Brown: A high-quality denoising dataset for smartphone cameras, CVPR 2018",
        aliases=("SIDD", "SIDD_Medium_Srgb"),
        layouts=(
            Layout(
                "official",
                {
                    "train": Folders("Data/{scene}", "Data/{scene}", Replace("_NOISY_", "_GT_")),
                    "test": MatBlocks("ValidationNoisyBlocksSrgb.mat", "ValidationGtBlocksSrgb.mat"),
                },
            ),
            Layout(
                "restormer",
                {
                    "train": Folders("train/SIDD/input_crops", "train/SIDD/target_crops"),
                    "test": MatBlocks(
                        "test/SIDD/ValidationNoisyBlocksSrgb.mat", "test/SIDD/ValidationGtBlocksSrgb.mat"
                    ),
                },
            ),
            Layout(
                "nafnet",
                {
                    "train": Folders("train/input_crops", "train/gt_crops"),
                    "test": MatBlocks("val/ValidationNoisyBlocksSrgb.mat", "val/ValidationGtBlocksSrgb.mat"),
                },
            ),
            _io("input-target", {"train": "train"}),
        ),
        protocol=RGB_FLOAT,
        tests=("sidd",),
        notes="RGB on float images (Restormer scores the unquantised .mat output), each 256x256 block whole; Gaussian "
        "SSIM (Restormer's MATLAB script uses 3-D SSIM). Validation: the validation blocks (data.val_limit for fewer). "
        "DND is prediction only: laformer-eval data=dnd writes the submission.",
    ),
    DatasetSpec(
        name="dnd",
        title="DND",
        task="real denoising",
        url="https://noise.visinf.tu-darmstadt.de/ (results are scored by its server)",
        reference="Plötz, Roth: Benchmarking denoising algorithms with real photographs, CVPR 2017",
        aliases=("DND", "dnd_2017"),
        kind="predict",
        layouts=(Layout("official", {"test": DndFolder(".")}), Layout("restormer", {"test": DndFolder("test/DND")})),
        protocol=RGB_FLOAT,
        notes="No public ground truth: the 50 x 20 boxes are denoised and written in the submission layout "
        "(bundled/NNNN.mat with Idenoised, israw=false, eval_version='1.0').",
    ),
    # -- Gaussian colour denoising --------------------------------------------------------------------------
    DatasetSpec(
        name="dfwb",
        title="DFWB",
        task="Gaussian colour denoising",
        url="DIV2K https://data.vision.ee.ethz.ch/cvl/DIV2K/ , Flickr2K, BSD400, WED; gathered by "
        "https://github.com/swz30/Restormer (Denoising/download_data.py)",
        reference="DIV2K (Agustsson & Timofte 2017), Flickr2K (Lim et al. 2017), BSD400 (Martin et al. 2001), "
        "WED (Ma et al. 2017)",
        aliases=("DFWB", "Downloads"),
        kind="clean",
        layouts=(
            Layout("restormer", {"train": CleanFolders(("train/DFWB",))}),
            Layout("downloads", {"train": CleanFolders(("DIV2K", "Flickr2K", "BSD400", "WaterlooED"))}),
            Layout("flat", {"train": CleanFolders((".",))}),
        ),
        protocol=RGB_8BIT,
        tests=("cbsd68", "kodak24", "mcmaster", "urban100"),
        val=ValSplit(benchmark="cbsd68"),
        notes="Ground truth only: training noise drawn on the fly; test noise N(0, sigma/255) seeded per image "
        "(seed + index), unclipped. RGB PSNR on 8-bit restorations, no border, as Restormer.",
    ),
    *(
        DatasetSpec(
            name=name,
            title=title,
            task="Gaussian colour denoising",
            url="https://github.com/swz30/Restormer (Denoising/download_data.py, test sets)",
            reference=reference,
            aliases=folders,
            kind="clean",
            layouts=(
                *(Layout("restormer", {"test": CleanFolders((f"test/{f}",))}) for f in folders),
                Layout("flat", {"test": CleanFolders((".",))}),
            ),
            protocol=RGB_8BIT,
            notes="Test only; noisy inputs made with the seeded Gaussian noise of the data module (data.test_sigmas).",
        )
        for name, title, folders, reference in (
            ("cbsd68", "CBSD68", ("CBSD68",), "Martin et al., ICCV 2001 (colour BSD68)"),
            ("kodak24", "Kodak24", ("Kodak24", "Kodak"), "Kodak PhotoCD images (Franzen 1999)"),
            ("mcmaster", "McMaster", ("McMaster",), "Zhang, Wu, Buades, Li: J. Electronic Imaging 2011"),
            ("urban100", "Urban100", ("Urban100",), "Huang, Singh, Ahuja: CVPR 2015"),
        )
    ),
    # -- dehazing -------------------------------------------------------------------------------------------
    *(
        DatasetSpec(
            name=f"reside_{sub.lower()}",
            title=f"RESIDE-{sub}",
            task="dehazing",
            url="https://sites.google.com/view/reside-dehaze-datasets ; rearranged copy: "
            "https://github.com/IDKiro/DehazeFormer",
            reference="Li et al.: Benchmarking single-image dehazing and beyond, IEEE TIP 2019",
            aliases=("RESIDE", sub, f"RESIDE-{short}", f"reside-{long}"),
            layouts=(
                Layout("original", {"train": Folders(f"{sub}/hazy", f"{sub}/clear", PrefixBefore())}),
                Layout("original-folder", {"train": Folders("hazy", "clear", PrefixBefore())}),
                Layout("dehazeformer", {"train": Folders("train/hazy", "train/GT", PrefixBefore())}),
                Layout("gunet", {"train": Folders("IN", "GT", PrefixBefore())}),
            ),
            protocol=RGB_FLOAT,
            tests=(f"sots_{long}",),
            val=ValSplit(benchmark=f"sots_{long}", center_crop=None if long == "indoor" else 256),
            size_mismatch="center_crop_target",
            notes="Hazy '<id>_<params>' pairs with clear '<id>' (many to one); clear images larger than the hazy "
            "ones are centre-cropped, as FFA-Net. RGB PSNR on float images as DehazeFormer; Gaussian SSIM at full "
            "resolution (DehazeFormer down-samples first).",
        )
        for sub, short, long in (("ITS", "IN", "indoor"), ("OTS", "OUT", "outdoor"))
    ),
    *(
        DatasetSpec(
            name=f"sots_{long}",
            title=f"SOTS-{long}",
            task="dehazing",
            url="https://sites.google.com/view/reside-dehaze-datasets ; rearranged copy: "
            "https://github.com/IDKiro/DehazeFormer",
            reference="Li et al.: Benchmarking single-image dehazing and beyond, IEEE TIP 2019",
            aliases=("RESIDE", "SOTS", f"RESIDE-{short}", f"reside-{long}", f"SOTS-{short}"),
            layouts=(
                Layout("original", {"test": Folders(f"SOTS/{long}/hazy", f"SOTS/{long}/clear", PrefixBefore())}),
                Layout("original-sots", {"test": Folders(f"{long}/hazy", f"{long}/clear", PrefixBefore())}),
                # data.root at SOTS/<indoor|outdoor> itself, the folder holding hazy/ and clear/
                Layout("original-folder", {"test": Folders("hazy", "clear", PrefixBefore())}),
                Layout("dehazeformer", {"test": Folders("test/hazy", "test/GT", PrefixBefore())}),
                Layout("gunet", {"test": Folders("IN", "GT", PrefixBefore())}),
            ),
            protocol=RGB_FLOAT,
            size_mismatch="center_crop_target",
            notes="Test only; scored as RESIDE.",
        )
        for short, long in (("IN", "indoor"), ("OUT", "outdoor"))
    ),
    # -- low-light enhancement ------------------------------------------------------------------------------
    DatasetSpec(
        name="lolv1",
        title="LOL-v1",
        task="low-light enhancement",
        url="https://daooshee.github.io/BMVC2018website/ ; Retinexformer's copy: "
        "https://github.com/caiyuanhao1998/Retinexformer",
        reference="Wei, Wang, Yang, Liu: Deep Retinex decomposition for low-light enhancement, BMVC 2018",
        aliases=("LOL", "LOLdataset", "LOLv1", "LOL-v1", "LOL_v1"),
        layouts=(
            _io("official", {"train": "our485", "test": "eval15"}, "low", "high"),
            _io("retinexformer", {"train": "Train", "test": "Test"}),
            _io("uhdfour", {"train": "our485", "test": "eval15"}, "input", "gt"),
        ),
        protocol=RGB_FLOAT,
        notes="RGB PSNR on float images as Retinexformer (its SSIM uses 8-bit images; we score both on float); "
        "no GT-mean correction. Validation: the test split, as Retinexformer.",
    ),
    *(
        DatasetSpec(
            name=f"lolv2_{key}",
            title=f"LOL-v2-{key}",
            task="low-light enhancement",
            url="https://github.com/flyywh/SGM-Low-Light (LOL-v2) ; Retinexformer's copy: "
            "https://github.com/caiyuanhao1998/Retinexformer",
            reference="Yang et al.: Sparse gradient regularized deep Retinex network, IEEE TIP 2021",
            aliases=("LOLv2", "LOL-v2", "LOL_v2", f"LOLv2/{sub}", f"LOL-v2/{sub}"),
            layouts=(
                _io("official", {"train": f"{sub}/Train", "test": f"{sub}/Test"}, "Low", "Normal", rule),
                _io("official-subset", {"train": "Train", "test": "Test"}, "Low", "Normal", rule),
            ),
            protocol=RGB_FLOAT,
            notes="Real pairs 'low00690' with 'normal00690' (or identical names); synthetic pairs share names. "
            "Scored as LOL-v1.",
        )
        for key, sub, rule in (("real", "Real_captured", Replace("low", "normal")), ("synthetic", "Synthetic", None))
    ),
    # -- ultra-high-definition restoration ------------------------------------------------------------------
    *(
        DatasetSpec(
            name=name,
            title=title,
            task=task,
            url=url,
            reference=reference,
            aliases=aliases,
            layouts=(
                _io("uhddip", {"train": "training_set", "test": "testing_set"}, "input", "gt"),
                _io("uhddip-val", {"test": "val"}, "input", "gt"),
                _io("uhdformer", {"train": "train", "test": "test"}, "input", "gt"),
            ),
            protocol=UHD,
            val=ValSplit(center_crop=1024),
            notes="Y channel, 1-pixel border, 8-bit, as UHDformer's inference defaults (UHDDIP: no border; UHDFour: "
            "RGB). Gaussian SSIM on Y. Validation: centre 1024x1024 of each test image.",
        )
        for name, title, task, aliases, url, reference in (
            (
                "uhd_ll",
                "UHD-LL",
                "UHD low-light enhancement",
                ("UHD-LL", "UHD_LL"),
                "https://li-chongyi.github.io/UHDFour/",
                "Li et al.: Embedding Fourier for ultra-high-definition low-light image enhancement, ICLR 2023",
            ),
            (
                "uhd_haze",
                "UHD-Haze",
                "UHD dehazing",
                ("UHD-Haze", "UHD_Haze", "4KID"),
                "https://github.com/wlydlut/UHDDIP ; https://github.com/supersupercong/UHDformer",
                "Wang et al.: Correlation matching transformation transformers for UHD image restoration, AAAI 2024",
            ),
            (
                "uhd_blur",
                "UHD-Blur",
                "UHD deblurring",
                ("UHD-Blur", "UHD_Blur"),
                "https://github.com/wlydlut/UHDDIP ; https://github.com/supersupercong/UHDformer",
                "Wang et al.: Correlation matching transformation transformers for UHD image restoration, AAAI 2024",
            ),
        )
    ),
    DatasetSpec(
        name="uhd_rain",
        title="4K-Rain13k",
        task="UHD deraining",
        url="https://github.com/cschenxiang/UDR-Mixer",
        reference="Chen et al.: Towards ultra-high-definition image deraining (UDR-Mixer), 2024",
        aliases=("4K-Rain13k", "4K-Rain13K", "4KRain13k"),
        layouts=(
            _io("udr-mixer", {"train": "Train", "test": "Test"}),
            _io("udr-mixer-data", {"train": "data/Train", "test": "data/Test"}),
        ),
        protocol=RAIN_4K,
        val=ValSplit(center_crop=1024),
        notes="Y channel, 4-pixel border, 8-bit, input and target centre-cropped to a multiple of 16, as UDR-Mixer.",
    ),
)

REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in SPECS}


def get_spec(name: str) -> DatasetSpec:
    """The spec registered under ``name``; an unknown name lists the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
