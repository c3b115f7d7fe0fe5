"""DICOM folder adapter: every DICOM file below root (any names), the label read from a tag such as Modality."""

from __future__ import annotations

from pathlib import Path

from biomedica.eval.adapters.registry import (
    AdapterOptions,
    DatasetInvalid,
    DatasetMissing,
    EvalDataset,
    register_adapter,
)
from biomedica.eval.images import DicomImage


class DicomFolderOptions(AdapterOptions):
    label_tag: str = "Modality"  # a DICOM keyword (BodyPartExamined, SeriesDescription, ...)
    label_map: dict[str, str] = {}  # tag value -> class label, e.g. {"DX": "CR"}; unmapped values kept
    frames: str = "middle"  # middle | first | all (multi-frame files)
    only_labels: list[str] | None = None  # keep only files whose (mapped) label is listed


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


@register_adapter("dicom", DicomFolderOptions)
def load_dicom_folder(root: Path, options: DicomFolderOptions) -> EvalDataset:
    """Files with the DICM preamble (or .dcm) that carry pixel data a pydicom decoder can read."""
    try:
        import pydicom
        from pydicom.pixels import get_decoder
    except ImportError:
        raise DatasetMissing("the dicom adapter needs pydicom: pip install pydicom") from None
    if options.frames not in ("middle", "first", "all"):
        raise DatasetInvalid(f"frames must be middle, first or all, not {options.frames!r}")
    candidates = sorted(p for p in root.rglob("*") if p.is_file() and (p.suffix.lower() == ".dcm" or _is_dicom(p)))
    if not candidates:
        raise DatasetMissing(f"no DICOM files below {root}")
    images, labels = [], []
    skipped: dict[str, int] = {}
    for path in candidates:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - pydicom raises many types on foreign files
            skipped["unreadable"] = skipped.get("unreadable", 0) + 1
            continue
        value = header.get(options.label_tag)
        if value is None or str(value).strip() == "":
            skipped[f"no {options.label_tag}"] = skipped.get(f"no {options.label_tag}", 0) + 1
            continue
        label = options.label_map.get(str(value).strip(), str(value).strip())
        if options.only_labels is not None and label not in options.only_labels:
            continue
        syntax = getattr(getattr(header, "file_meta", None), "TransferSyntaxUID", None)
        if not hasattr(header, "Rows") or (syntax is not None and not _decodable(get_decoder, syntax)):
            skipped["no decodable pixels"] = skipped.get("no decodable pixels", 0) + 1
            continue
        n_frames = int(header.get("NumberOfFrames", 1) or 1)
        if options.frames == "all":
            frames = list(range(n_frames))
        else:
            frames = [n_frames // 2 if options.frames == "middle" else 0]
        for frame in frames:
            images.append(DicomImage(path, frame if n_frames > 1 else None))
            labels.append(label)
    if not images:
        raise DatasetInvalid(f"{root}: no DICOM file with a {options.label_tag} tag and decodable pixels ({skipped})")
    notes = [f"skipped {n} file(s): {why}" for why, n in sorted(skipped.items())]
    return EvalDataset(images=images, labels=labels, notes=notes)


def _decodable(get_decoder, syntax) -> bool:
    try:
        return bool(get_decoder(syntax).is_available)
    except (NotImplementedError, ValueError):
        return False
