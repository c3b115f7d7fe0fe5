"""Training-ready copies: bytes and encode time vs what OpenCLIP's RandomResizedCrop(224) sees, per size and quality.

Usage:
    python benchmarks/training_images.py                 # the full grid (~3-5 min on one core)
    python benchmarks/training_images.py --quick         # sizes 224/256, q 85/90, 4 draws (seconds)

Images: the real figures in ../shared/fixtures (pmc_package_figures/*/*.jpg|tif, publaynet/*.jpg, the
elife TIFF in pmc_packages/elife-00353, skimage ihc.png and retina.jpg), each first turned into the
bytes the archive stores (images.prepare_image: JPEG unchanged, TIFF -> lossless PNG).

Fidelity of what training sees: for each image, `--draws` boxes of OpenCLIP's train crop
(torchvision RandomResizedCrop(224, scale=(0.9, 1.0), ratio=(3/4, 4/3)).get_params, fixed seed) are
taken in relative coordinates and applied to the original (decoded at full size, upright 8-bit
sRGB: the same normalisation as the copy, so only resize + encode differ) and to the copy, each
resized to 224x224 bicubic as OpenCLIP does; the two crops are compared as RGB: PSNR (capped at
99 dB when equal) and SSIM (skimage, data_range 255). Rows give the median and the 5th percentile
over all (image, draw) pairs. "lossless" rows: the resized pixels before encoding (the resize's own
loss). bytes: mean bytes per sample; x orig: original bytes / copy bytes; enc ms: mean
make_training_image time from the stored bytes; load ms: decode the copy + the crop (one draw), as
a loader would, vs the same for the original in the first row. One process, one thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy/torch load
    os.environ.setdefault(_var, "1")

import argparse
import io
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
CROP = 224
PSNR_CAP = 99.0


@dataclass
class Source:
    name: str
    stored: bytes  # what the archive stores
    pixels: object  # PIL image, upright 8-bit RGB, full size
    boxes: list[tuple[float, float, float, float]]  # relative (left, top, right, bottom)
    reference: list[object]  # numpy 224x224x3 crops of the original


def fixture_files(fixtures: Path) -> list[Path]:
    figures = fixtures / "images" / "pmc_package_figures"
    files = sorted(figures.glob("*/*.jpg")) + sorted(figures.glob("*/*.tif"))
    files += sorted((fixtures / "images" / "publaynet").glob("*.jpg"))
    files += [fixtures / "pmc_packages" / "elife-00353" / "elife-00353-fig1-v1.tif"]
    files += [fixtures / "images" / "skimage" / "ihc.png", fixtures / "images" / "skimage" / "retina.jpg"]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        sys.exit(f"fixture images missing: {', '.join(missing)}; run from a checkout beside ../shared/fixtures")
    return files


def crop(image, box, np):
    """The 224x224 bicubic crop of relative `box` (what RandomResizedCrop + resize gives OpenCLIP)."""
    from PIL import Image

    width, height = image.size
    left, top, right, bottom = box
    pixels = image.resize((CROP, CROP), Image.Resampling.BICUBIC,
                          box=(left * width, top * height, right * width, bottom * height))
    return np.asarray(pixels.convert("RGB"))


def psnr(a, b, np) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * np.log10(255.0**2 / mse))


def load_sources(files: list[Path], draws: int, seed: int) -> list[Source]:
    import numpy as np
    import torch
    from torchvision.transforms import RandomResizedCrop

    from biomedica.images import prepare_image
    from biomedica.images.training import load_training_pixels

    torch.manual_seed(seed)
    sources = []
    for path in files:
        stored = prepare_image(path.read_bytes(), path.name).data
        pixels = load_training_pixels(stored, path.name).convert("RGB")
        width, height = pixels.size
        boxes = []
        for _ in range(draws):
            top, left, h, w = RandomResizedCrop.get_params(pixels, scale=[0.9, 1.0], ratio=[3 / 4, 4 / 3])
            boxes.append((left / width, top / height, (left + w) / width, (top + h) / height))
        sources.append(Source(path.name, stored, pixels, boxes, [crop(pixels, box, np) for box in boxes]))
    return sources


def load_ms(data: bytes, box, np) -> float:
    from PIL import Image

    start = time.perf_counter()
    image = Image.open(io.BytesIO(data))
    image.load()
    crop(image.convert("RGB"), box, np)
    return (time.perf_counter() - start) * 1000


def measure(sources: list[Source], spec, label: str, subsampling: int | None, lossless: bool) -> dict:
    import numpy as np
    from PIL import Image
    from skimage.metrics import structural_similarity

    from biomedica.images.training import (
        RESIZE_REDUCING_GAP,
        encode_training_image,
        load_training_pixels,
        make_training_image,
        target_size,
    )

    psnrs, ssims, sizes, encode, load = [], [], [], [], []
    for source in sources:
        start = time.perf_counter()
        if subsampling is None and not lossless:
            copy = make_training_image(source.stored, spec, source.name)
            data = copy.data
        else:  # the same steps, with the encoding varied
            pixels = load_training_pixels(source.stored, source.name, spec)
            target = target_size(*pixels.size, spec)
            image = pixels if pixels.size == target else pixels.resize(
                target, Image.Resampling.LANCZOS, reducing_gap=RESIZE_REDUCING_GAP)
            data = b"" if lossless else encode_training_image(image, spec, subsampling=subsampling)
        encode.append(float("nan") if lossless else (time.perf_counter() - start) * 1000)
        if lossless:
            decoded = image
            sizes.append(float("nan"))
        else:
            sizes.append(len(data))
            load.append(load_ms(data, source.boxes[0], np))
            decoded = Image.open(io.BytesIO(data))
            decoded.load()
        for box, reference in zip(source.boxes, source.reference):
            candidate = crop(decoded, box, np)
            psnrs.append(psnr(reference, candidate, np))
            ssims.append(structural_similarity(reference, candidate, channel_axis=2, data_range=255))
    return {
        "size": spec.size, "label": label, "bytes": statistics.fmean(sizes), "encode_ms": statistics.fmean(encode),
        "load_ms": statistics.fmean(load) if load else float("nan"),
        "psnr_med": statistics.median(psnrs), "psnr_p5": float(np.percentile(psnrs, 5)),
        "ssim_med": statistics.median(ssims), "ssim_p5": float(np.percentile(ssims, 5)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 256, 288, 320, 384])
    parser.add_argument("--qualities", type=int, nargs="+", default=[75, 80, 85, 90, 95])
    parser.add_argument("--webp", type=int, nargs="+", default=[80, 90], help="WebP qualities")
    parser.add_argument("--draws", type=int, default=20, help="RandomResizedCrop boxes per image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="sizes 224 256, q 85 90, webp 90, 4 draws")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.qualities, args.webp, args.draws = [224, 256], [85, 90], [90], 4

    sys.path.insert(0, str(REPO / "src"))
    import numpy as np
    import torch

    from biomedica.images.training import TrainingImageSpec

    torch.set_num_threads(1)
    files = fixture_files(args.fixtures)
    started = time.perf_counter()
    sources = load_sources(files, args.draws, args.seed)
    original_bytes = statistics.fmean(len(s.stored) for s in sources)
    original_load = statistics.fmean(load_ms(s.stored, s.boxes[0], np) for s in sources)
    print(f"{len(sources)} images, {args.draws} crops each; originals: {original_bytes / 1000:.1f} kB/sample, "
          f"load {original_load:.1f} ms (decode + crop)")
    header = f"{'size':>4} {'encoding':<16} {'kB':>6} {'x orig':>6} {'enc ms':>6} {'load ms':>7} " \
             f"{'PSNR med':>8} {'PSNR p5':>7} {'SSIM med':>8} {'SSIM p5':>7}"
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        variants = [("lossless", TrainingImageSpec(size), None, True)]
        for quality in args.qualities:  # 4:4:4, the encoder's rule (JPEG_SUBSAMPLING)
            variants.append((f"jpeg q{quality} 444", TrainingImageSpec(size, quality=quality), None, False))
        for quality in (85, 90):  # 4:2:0 for comparison: fewer bytes at a quality, worse at equal bytes
            variants.append((f"jpeg q{quality} 420", TrainingImageSpec(size, quality=quality), 2, False))
        for quality in args.webp:
            variants.append((f"webp q{quality}", TrainingImageSpec(size, format="webp", quality=quality), None, False))
        for label, spec, subsampling, lossless in variants:
            row = measure(sources, spec, label, subsampling, lossless)
            ratio = original_bytes / row["bytes"] if row["bytes"] == row["bytes"] else float("nan")
            kilobytes = row["bytes"] / 1000
            print(f"{size:>4} {label:<16} {kilobytes:>6.1f} {ratio:>6.1f} {row['encode_ms']:>6.1f} "
                  f"{row['load_ms']:>7.2f} {row['psnr_med']:>8.1f} {row['psnr_p5']:>7.1f} "
                  f"{row['ssim_med']:>8.4f} {row['ssim_p5']:>7.4f}", flush=True)
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
