"""Small real copies of the benchmark datasets' layouts, written on demand for tests.

Each writer puts real image files (Pillow, 32x32) and metadata in the release's own format into
a folder: ``.mat`` through scipy with the release's variable names and shapes (cell arrays as
object arrays), ``.xlsx`` through pandas/openpyxl with the release's sheet and columns, CSV and
text exactly as released. Synthetic sets hold 3 references x 2 types x 2 levels. By default each
metadata file also holds a NaN score and, where names come from the metadata, a
``../escape.png`` row. The returned ``Written`` says what a loader must report: every record
(image id -> score, group, distortion, level) and the location of every row that must become a
Problem.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.io import savemat

NAN = math.nan
ESCAPE = "../escape.png"


@dataclass
class Written:
    """A fixture on disk and what a loader must report for it."""

    dataset: str
    layout: str  # the Dataset.layout the loader should report
    root: Path
    # image id -> (score, group, distortion, level)
    records: dict[str, tuple[float, str, str | None, int | None]] = field(default_factory=dict)
    problems: set[str] = field(default_factory=set)  # "file:row" locations

    @property
    def images(self) -> int:
        return len(self.records)

    @property
    def groups(self) -> int:
        return len({group for _, group, _, _ in self.records.values()})

    def expect(self, image_id: str, score: float, group: str | None = None,
               distortion: str | None = None, level: int | None = None) -> None:
        self.records[image_id] = (score, group or image_id, distortion, level)


def image(path: Path, seed: int = 0, size: int = 32) -> None:
    """A small real image, its format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _score(k: int, low: float, high: float) -> float:
    """A distinct in-range score for the k-th image."""
    return round(low + (high - low) * ((k * 7) % 23 + 1) / 25, 4)


def _text(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(value)


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[_text(v) if isinstance(v, float) else v for v in row] for row in rows])


def _cells(values: list[str]) -> np.ndarray:
    """A MATLAB cell array of strings, shape (1, n)."""
    cells = np.empty((1, len(values)), dtype=object)
    cells[0, :] = values
    return cells


def _pyiqa_csv(root: Path, name: str, header: list[str], rows: list[list[object]],
               written: Written) -> None:
    """meta_info/<name>, with the problem rows' locations (header is line 1)."""
    _csv(root / "meta_info" / name, header, rows)
    for line, row in enumerate(rows, 2):
        if ESCAPE in row or any(isinstance(v, float) and math.isnan(v) for v in row):
            written.problems.add(f"meta_info/{name}:{line}")


# --- synthetic sets: (reference, type, level) tables -----------------------------------------


def _table(refs: tuple[str, ...], types: tuple, levels: tuple[int, ...], low: float, high: float
           ) -> list[tuple[str, object, int, float]]:
    return [(ref, kind, level, _score(k, low, high))
            for k, (ref, kind, level) in enumerate((r, t, lv) for r in refs for t in types
                                                   for lv in levels)]


# LIVE: every .mat entry i is folder/imgN in the release's order; orgs == 1 every 7th entry
LIVE_FOLDERS = {"jp2k": 227, "jpeg": 233, "wn": 174, "gblur": 174, "fastfading": 174}
LIVE_REFS = ("bikes.bmp", "caps.bmp", "house.bmp")
LIVE_NAN_ENTRY = 5  # 0-based entry whose dmos_new is NaN


def write_live_release(root: Path, bad_rows: bool = True) -> Written:
    written = Written("live", "release", root)
    entries = [(f, n) for f, size in LIVE_FOLDERS.items() for n in range(1, size + 1)]
    dmos, orgs, refs = [], [], []
    for index, (folder, number) in enumerate(entries):
        ref, org = LIVE_REFS[index % 3], float(index % 7 == 3)
        value = 0.0 if org else _score(index, 0.0, 100.0)
        if bad_rows and index == LIVE_NAN_ENTRY:
            value = NAN
            written.problems.add(f"dmos_realigned.mat:{index + 1}")
        elif not org:
            written.expect(f"{folder}/img{number}.bmp", value, ref, folder)
        dmos.append(value)
        orgs.append(org)
        refs.append(ref)
        image(root / folder / f"img{number}.bmp", index)
    for k, ref in enumerate(LIVE_REFS):
        image(root / "refimgs" / ref, 1000 + k)
    savemat(root / "dmos_realigned.mat", {"dmos_new": np.array([dmos]), "orgs": np.array([orgs]),
                                          "dmos_std": np.ones((1, len(entries)))})
    savemat(root / "refnames_all.mat", {"refnames_all": _cells(refs)})
    return written


def write_live_pyiqa(root: Path, bad_rows: bool = True) -> Written:
    written = Written("live", "pyiqa", root)
    rows: list[list[object]] = []
    for k, (ref, folder, _, score) in enumerate(_table(LIVE_REFS, ("jp2k", "wn"), (1, 2),
                                                       0.0, 100.0)):
        name = f"{folder}/img{k + 1}.bmp"
        image(root / "LIVEIQA_release2" / name, k)
        rows.append([f"refimgs/{ref}", name, score])
        written.expect(f"LIVEIQA_release2/{name}", score, ref, folder)
    if bad_rows:
        rows += [["refimgs/bikes.bmp", "jp2k/img99.bmp", NAN], ["refimgs/bikes.bmp", ESCAPE, 50.0]]
    _pyiqa_csv(root, "meta_info_LIVEIQADataset.csv", ["ref_name", "dist_name", "mos"], rows, written)
    return written


# CSIQ: xlsx dst_type, file-name code, type folder
CSIQ_REFS = ("1600", "aerial_city", "boston")
CSIQ_TYPES = (("noise", "AWGN", "awgn", 1), ("jpeg 2000", "jpeg2000", "jpeg2000", 3))


def _csiq_table() -> list[tuple[str, tuple, int, float]]:
    return _table(CSIQ_REFS, CSIQ_TYPES, (1, 2), 0.0, 1.0)


def _csiq_sources(root: Path) -> None:
    for k, ref in enumerate(CSIQ_REFS):
        image(root / "src_imgs" / f"{ref}.png", 1000 + k)


def write_csiq_official(root: Path, bad_rows: bool = True) -> Written:
    """``dst_imgs/<type>/`` and ``csiq.DMOS.xlsx`` (sheet all_by_image, header on row 4, D-I)."""
    written = Written("csiq", "release", root)
    rows: list[list[object]] = []
    for k, (ref, (dst_type, code, folder, idx), level, score) in enumerate(_csiq_table()):
        name = f"{ref}.{code}.{level}.png"
        image(root / "dst_imgs" / folder / name, k)
        rows.append([int(ref) if ref.isdigit() else ref, idx, dst_type, level, 0.01, score])
        written.expect(f"dst_imgs/{folder}/{name}", score, f"{ref}.png", folder, level)
    if bad_rows:
        rows += [["boston", 5, "blur", 3, 0.01, NAN], ["boston", 9, "sharpen", 1, 0.01, 0.5]]
        written.problems |= {f"csiq.DMOS.xlsx:{5 + len(rows) - 2}", f"csiq.DMOS.xlsx:{5 + len(rows) - 1}"}
    _csiq_sources(root)
    table = pd.DataFrame(rows, columns=["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"])
    with pd.ExcelWriter(root / "csiq.DMOS.xlsx", engine="openpyxl") as writer:
        pd.DataFrame([["CSIQ DMOS by image"]]).to_excel(writer, sheet_name="all_by_image",
                                                        header=False, index=False)
        table.to_excel(writer, sheet_name="all_by_image", startrow=3, startcol=3, index=False)
    return written


def write_csiq_label(root: Path, bad_rows: bool = True) -> Written:
    """The derived layout: ``csiq_label.txt`` over a flat ``dst_imgs_all/``."""
    written = Written("csiq", "release", root)
    lines = []
    for k, (ref, (_, code, folder, _), level, score) in enumerate(_csiq_table()):
        name = f"{ref}.{code}.{level}.png"
        image(root / "dst_imgs_all" / name, k)
        lines.append(f"{name} {score}")
        written.expect(f"dst_imgs_all/{name}", score, f"{ref}.png", folder, level)
    if bad_rows:
        lines += ["boston.BLUR.3.png NaN", f"{ESCAPE} 0.5"]
        written.problems |= {f"csiq_label.txt:{len(lines) - 1}", f"csiq_label.txt:{len(lines)}"}
    _csiq_sources(root)
    (root / "csiq_label.txt").write_text("\n".join(lines) + "\n")
    return written


def write_csiq_pyiqa(root: Path, bad_rows: bool = True) -> Written:
    written = Written("csiq", "pyiqa", root)
    rows: list[list[object]] = []
    for k, (ref, (_, code, folder, _), level, score) in enumerate(_csiq_table()):
        name = f"{ref}.{code}.{level}.png"
        image(root / "CSIQ" / "dst_imgs" / name, k)
        rows.append([f"{ref}.png", name, score])
        written.expect(f"CSIQ/dst_imgs/{name}", score, f"{ref}.png", folder, level)
    if bad_rows:
        rows += [["boston.png", "boston.BLUR.3.png", NAN], ["boston.png", ESCAPE, 0.5]]
    _csiq_sources(root / "CSIQ")
    _pyiqa_csv(root, "meta_info_CSIQDataset.csv", ["ref_name", "dist_name", "dmos"], rows, written)
    return written


# TID2013: references 01, 02, 25; types 01 and 24; levels 1 and 5. Some files are stored with
# upper-case names, as in the release.
TID_REFS = ("01", "02", "25")
TID_TYPES = {1: "Additive Gaussian noise", 24: "Sparse sampling and reconstruction"}
TID_UPPER = {"i01_01_1.bmp": "I01_01_1.bmp", "i02_24_5.bmp": "I02_24_5.BMP"}


def _tid_table() -> list[tuple[str, int, int, float]]:
    return _table(TID_REFS, tuple(TID_TYPES), (1, 5), 0.0, 9.0)


def _tid_images(folder: Path, prefix: str, written: Written) -> list[tuple[str, str, float]]:
    """Write the distorted images; return (reference file, metadata name, score) per image."""
    out = []
    for k, (ref, code, level, score) in enumerate(_tid_table()):
        name = f"i{ref}_{code:02d}_{level}.bmp"
        on_disk = TID_UPPER.get(name, name)
        image(folder / on_disk, k)
        written.expect(f"{prefix}{on_disk}", score, f"I{ref}.BMP", TID_TYPES[code], level)
        out.append((f"I{ref}.BMP" if ref != "25" else "i25.bmp", name, score))
    return out


def write_tid2013_release(root: Path, bad_rows: bool = True) -> Written:
    written = Written("tid2013", "release", root)
    rows = [(score, name) for _, name, score in _tid_images(root / "distorted_images",
                                                           "distorted_images/", written)]
    if bad_rows:
        rows += [(NAN, "i01_01_3.bmp"), (4.0, "../escape.bmp")]
        written.problems |= {f"mos_with_names.txt:{len(rows) - 1}", f"mos_with_names.txt:{len(rows)}"}
    for ref in ("I01.BMP", "I02.BMP", "i25.bmp"):
        image(root / "reference_images" / ref)
    (root / "mos_with_names.txt").write_text("".join(f"{_text(s)} {n}\n" for s, n in rows))
    (root / "mos_std.txt").write_text("0.1\n" * len(rows))
    return written


def write_tid2013_pyiqa(root: Path, bad_rows: bool = True) -> Written:
    written = Written("tid2013", "pyiqa", root)
    folder = root / "tid2013" / "distorted_images"
    rows: list[list[object]] = [[ref, name, score, 0.1]
                                for ref, name, score in _tid_images(folder, "tid2013/distorted_images/",
                                                                    written)]
    if bad_rows:
        rows += [["I01.BMP", "i01_01_3.bmp", NAN, 0.1], ["I01.BMP", ESCAPE, 4.0, 0.1]]
    _pyiqa_csv(root, "meta_info_TID2013Dataset.csv", ["ref_name", "dist_name", "mos", "std"], rows,
               written)
    return written


# KADID-10k: references I01-I03, types 01 and 25, levels 01 and 05
KADID_TYPES = {1: "Gaussian blur", 25: "contrast change"}


def _kadid_images(folder: Path, prefix: str, written: Written) -> list[tuple[str, str, float]]:
    out = []
    for k, (ref, code, level, score) in enumerate(_table(("01", "02", "03"), tuple(KADID_TYPES),
                                                         (1, 5), 1.0, 5.0)):
        name = f"I{ref}_{code:02d}_{level:02d}.png"
        image(folder / name, k)
        written.expect(f"{prefix}{name}", score, f"I{ref}.png", KADID_TYPES[code], level)
        out.append((f"I{ref}.png", name, score))
    for ref in ("I01.png", "I02.png", "I03.png"):
        image(folder / ref)
    return out


def write_kadid10k_release(root: Path, bad_rows: bool = True) -> Written:
    written = Written("kadid10k", "release", root)
    rows: list[list[object]] = [[name, ref, score, 0.5]
                                for ref, name, score in _kadid_images(root / "images", "images/",
                                                                      written)]
    if bad_rows:
        rows += [["I03_25_03.png", "I03.png", NAN, 0.5], [ESCAPE, "I01.png", 3.0, 0.5]]
        written.problems |= {f"dmos.csv:{len(rows)}", f"dmos.csv:{len(rows) + 1}"}
    _csv(root / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"], rows)
    return written


def write_kadid10k_pyiqa(root: Path, bad_rows: bool = True) -> Written:
    written = Written("kadid10k", "pyiqa", root)
    rows: list[list[object]] = [[ref, name, score, 0.5]
                                for ref, name, score in _kadid_images(
                                    root / "kadid10k" / "images", "kadid10k/images/", written)]
    if bad_rows:
        rows += [["I03.png", "I03_25_03.png", NAN, 0.5], ["I01.png", ESCAPE, 3.0, 0.5]]
    _pyiqa_csv(root, "meta_info_KADID10kDataset.csv", ["ref_name", "dist_name", "dmos", "std"],
               rows, written)
    return written


# Authentic sets: (name, score) lists; LIVEC's start with the 7 training images
LIVEC_TRAINING = [f"t{i}.bmp" for i in range(1, 8)]
LIVEC_IMAGES = ["3.bmp", "4.bmp", "10.bmp", "100.bmp", "1000.JPG", "1001.JPG"]


def _authentic(names: list[str], low: float, high: float) -> list[tuple[str, float]]:
    return [(name, _score(k, low, high)) for k, name in enumerate(names)]


def write_livec_release(root: Path, bad_rows: bool = True) -> Written:
    """``Images/``, ``Data/AllImages_release.mat`` (n x 1 cell) and ``AllMOS_release.mat`` (1 x n)."""
    written = Written("livec", "release", root)
    entries = _authentic(LIVEC_TRAINING, 0.0, 100.0)
    for k, (name, _) in enumerate(entries):
        image(root / "Images" / "trainingImages" / name, k)
    for k, (name, score) in enumerate(_authentic(LIVEC_IMAGES, 0.0, 100.0)):
        image(root / "Images" / name, 100 + k)
        entries.append((name, score))
        written.expect(f"Images/{name}", score)
    if bad_rows:
        entries += [("11.bmp", NAN), (ESCAPE, 50.0)]
        written.problems |= {f"Data/AllImages_release.mat:{len(entries) - 1}",
                             f"Data/AllImages_release.mat:{len(entries)}"}
    names = np.empty((len(entries), 1), dtype=object)
    names[:, 0] = [name for name, _ in entries]
    (root / "Data").mkdir(parents=True)
    savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": names})
    savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array([[s for _, s in entries]])})
    savemat(root / "Data" / "AllStdDev_release.mat", {"AllStdDev_release": np.ones((1, len(entries)))})
    return written


def write_livec_pyiqa(root: Path, bad_rows: bool = True) -> Written:
    written = Written("livec", "pyiqa", root)
    rows: list[list[object]] = []
    for k, (name, score) in enumerate(_authentic(LIVEC_TRAINING + LIVEC_IMAGES, 0.0, 100.0)):
        image(root / "LIVEC" / name, k)
        rows.append([name, score, 15.0])
        if k >= len(LIVEC_TRAINING):
            written.expect(f"LIVEC/{name}", score)
    if bad_rows:
        rows += [["11.bmp", NAN, 15.0], [ESCAPE, 50.0, 15.0]]
    _pyiqa_csv(root, "meta_info_LIVEChallengeDataset.csv", ["img_name", "mos", "std"], rows, written)
    return written


KONIQ_IMAGES = ["10004473376.jpg", "10007357496.jpg", "100117038.jpg", "826373.jpg"]


def write_koniq10k_release(root: Path, bad_rows: bool = True) -> Written:
    """MOS (1-5) and MOS_zscore (0-100) differ, so the test sees which one is read."""
    written = Written("koniq10k", "release", root)
    rows: list[list[object]] = []
    for k, (name, zscore) in enumerate(_authentic(KONIQ_IMAGES, 0.0, 100.0)):
        image(root / "1024x768" / name, k)
        rows.append([name, 0, 5, 60, 30, 5, 100, round(1 + zscore / 25, 3), 0.5, zscore])
        written.expect(f"1024x768/{name}", zscore)
    if bad_rows:
        rows += [["999.jpg", 0, 5, 60, 30, 5, 100, 3.2, 0.5, NAN],
                 [ESCAPE, 0, 5, 60, 30, 5, 100, 3.2, 0.5, 55.0]]
        written.problems |= {f"koniq10k_scores_and_distributions.csv:{len(rows)}",
                             f"koniq10k_scores_and_distributions.csv:{len(rows) + 1}"}
    _csv(root / "koniq10k_scores_and_distributions.csv",
         ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"], rows)
    return written


def write_koniq10k_pyiqa(root: Path, bad_rows: bool = True) -> Written:
    written = Written("koniq10k", "pyiqa", root)
    rows: list[list[object]] = []
    for k, (name, score) in enumerate(_authentic(KONIQ_IMAGES, 0.0, 100.0)):
        image(root / "koniq10k" / "512x384" / name, k)
        rows.append([name, score, 0.5, "training", 0.0, 0.05, 0.6, 0.3, 0.05, 100])
        written.expect(f"koniq10k/512x384/{name}", score)
    if bad_rows:
        rows += [["999.jpg", NAN, 0.5, "test", 0, 0, 0, 0, 0, 0],
                 [ESCAPE, 55.0, 0.5, "test", 0, 0, 0, 0, 0, 0]]
    _pyiqa_csv(root, "meta_info_KonIQ10kDataset.csv",
               ["img_name", "mos", "std", "split", "c1", "c2", "c3", "c4", "c5", "c_total"], rows, written)
    return written


SPAQ_IMAGES = ["00001.jpg", "00002.jpg", "00003.jpg", "11125.jpg"]
SPAQ_COLUMNS = ["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]


def _spaq_rows(folder: Path, prefix: str, written: Written, bad_rows: bool) -> list[list[object]]:
    """Write the images; the annotation rows (attribute scores all 50), bad rows last."""
    rows: list[list[object]] = []
    for k, (name, score) in enumerate(_authentic(SPAQ_IMAGES, 0.0, 100.0)):
        image(folder / name, k)
        rows.append([name, score])
        written.expect(f"{prefix}{name}", score)
    if bad_rows:
        rows += [["00004.jpg", NAN], [ESCAPE, 40.0]]
    return [row + [50.0] * 5 for row in rows]


def write_spaq_release(root: Path, bad_rows: bool = True) -> Written:
    written = Written("spaq", "release", root)
    rows = _spaq_rows(root / "TestImage", "TestImage/", written, bad_rows)
    if bad_rows:
        workbook = "Annotations/MOS and Image attribute scores.xlsx"
        written.problems |= {f"{workbook}:{len(rows)}", f"{workbook}:{len(rows) + 1}"}
    (root / "Annotations").mkdir(parents=True)
    pd.DataFrame(rows, columns=SPAQ_COLUMNS).to_excel(
        root / "Annotations" / "MOS and Image attribute scores.xlsx", index=False, engine="openpyxl")
    return written


def write_spaq_pyiqa(root: Path, bad_rows: bool = True) -> Written:
    written = Written("spaq", "pyiqa", root)
    rows = _spaq_rows(root / "SPAQ" / "TestImage", "SPAQ/TestImage/", written, bad_rows)
    _pyiqa_csv(root, "meta_info_SPAQDataset.csv", SPAQ_COLUMNS, rows, written)
    return written


# "dataset/layout" -> writer; csiq has two release layouts
WRITERS: dict[str, Callable[..., Written]] = {
    "live/release": write_live_release, "live/pyiqa": write_live_pyiqa,
    "csiq/official": write_csiq_official, "csiq/label": write_csiq_label,
    "csiq/pyiqa": write_csiq_pyiqa,
    "tid2013/release": write_tid2013_release, "tid2013/pyiqa": write_tid2013_pyiqa,
    "kadid10k/release": write_kadid10k_release, "kadid10k/pyiqa": write_kadid10k_pyiqa,
    "livec/release": write_livec_release, "livec/pyiqa": write_livec_pyiqa,
    "koniq10k/release": write_koniq10k_release, "koniq10k/pyiqa": write_koniq10k_pyiqa,
    "spaq/release": write_spaq_release, "spaq/pyiqa": write_spaq_pyiqa,
}


def noise_images(folder: Path, count: int, name: Callable[[int], str] = lambda k: f"{k:04d}.png"
                 ) -> list[tuple[str, float]]:
    """Blocky content plus Gaussian noise of a strength that rises over the images, so that a
    model can learn their quality: (file name, noise sigma) of each."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(count):
        content = np.kron(rng.uniform(40, 215, (4, 4, 3)), np.ones((56, 56, 1)))
        sigma = 60.0 * k / (count - 1)
        pixels = np.clip(content + rng.normal(0, sigma, content.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / name(k))
        out.append((name(k), sigma))
    return out


def write_noise_koniq(root: Path, count: int) -> Path:
    """A KonIQ-10k release layout of :func:`noise_images` whose MOS falls with the noise."""
    rows = [[name, 0, 0, 0, 0, 0, 0, round(1 + (100 - 1.5 * sigma) / 25, 3), 0.5,
             round(100 - 1.5 * sigma, 3)] for name, sigma in noise_images(root / "1024x768", count)]
    with open(root / "koniq10k_scores_and_distributions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD",
                         "MOS_zscore"])
        writer.writerows(rows)
    return root
