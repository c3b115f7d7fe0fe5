"""Synthetic PMC-like figure captions for benchmarks/search.py (benchmark-only; never imported by biomedica).

Why synthetic: 1M real captions are not on this machine, and ingesting 1M generated JATS
articles would benchmark ingest, not search. What matters to a keyword index is the shape
of the text, so this draws it the way PMC captions look: a Zipfian vocabulary (50k
pseudo-words, exponent ~1.07 as English text) into which ~200 biomedical compound terms
(`IL-6`, `CD4+`, `T2-weighted`, `H&E`, `18F-FDG`, ...) are mixed at mid ranks; captions of
~60 words (log-normal, 8-400) with panel labels and punctuation, a caption title, 0-3
in-text mentions of ~40 words, and per article (~5 figures) a title, 3-6 keywords, a journal
(2,000, Zipfian), a year (2000-2025, growing as PMC-OA grows), an article type and a licence
(groups commercial / noncommercial / other in PMC-OA's rough proportions 55/35/10).

Everything is seeded: the same (n, seed) gives the same corpus. `samples(start, count)` returns
the columns `biomedica.search.docs.unit_samples` returns for a unit of a real archive, in its row
order (licence groups in turn, as each group is its own shard).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_TERMS = (
    "IL-6 IL-1β IL-10 IL-17A TNF-α IFN-γ TGF-β1 CD4+ CD8+ CD3+ CD19+ CD34+ CD45+ CD68+ CD11b+ Foxp3+ PD-1 PD-L1 "
    "CTLA-4 HER2 EGFR BRCA1 BRCA2 TP53 KRAS BRAF V600E ALK ROS1 MET PIK3CA PTEN mTOR AKT ERK1/2 MAPK NF-κB STAT3 "
    "JAK2 Ki-67 α-SMA β-actin GAPDH E-cadherin N-cadherin vimentin collagen-I MMP-9 VEGF-A HIF-1α p-ERK p-AKT "
    "H&E PAS IHC IF DAPI Hoechst GFP mCherry EGFP YFP TUNEL Western qPCR RT-qPCR ELISA FACS scRNA-seq RNA-seq "
    "ChIP-seq ATAC-seq CRISPR Cas9 siRNA shRNA miR-21 miR-155 lncRNA circRNA T1-weighted T2-weighted FLAIR DWI ADC "
    "MRI fMRI CT PET PET/CT SPECT 18F-FDG 68Ga-PSMA 99mTc OCT OCTA US Doppler ECG EEG EMG X-ray CXR DXA "
    "COVID-19 SARS-CoV-2 HIV-1 HBV HCV H1N1 MERS-CoV Mycobacterium E.coli S.aureus P.aeruginosa C.elegans "
    "Drosophila zebrafish C57BL/6 BALB/c db/db ob/ob ApoE-/- HEK293T HeLa MCF-7 A549 HepG2 SH-SY5Y iPSC hESC "
    "Aβ42 tau p-tau α-synuclein APOE4 LRRK2 SOD1 HbA1c LDL-C HDL-C eGFR NT-proBNP hs-CRP IgG IgM IgA IgE "
    "Th1 Th2 Th17 Treg NK M1 M2 DC B220 F4/80 Ly6G Ly6C Gr-1 Sca-1 c-Kit Lin- LSK HSC MSC EPC ROS NO ATP "
    "NADPH SOD GSH MDA LC3-II p62 Beclin-1 caspase-3 cleaved-PARP Bcl-2 Bax 5-FU cisplatin doxorubicin "
    "paclitaxel 1.5T 3T 7T 10× 20× 40× 100× 50μm 100μm 200μm 1mm p<0.05 p<0.01 p<0.001 n=3 n=6 n=10"
)
BIOMEDICAL = _TERMS.split()
_FILLERS = "of the and in a to with for from by on at as is are was were or that this these after"
FILLERS = _FILLERS.split()
LICENSES = {  # group -> (licence, weight within the group)
    "commercial": (("CC BY 4.0", 0.80), ("CC BY 3.0", 0.10), ("CC0 1.0", 0.05), ("CC BY-SA 4.0", 0.03), ("CC BY-ND 4.0", 0.02)),
    "noncommercial": (("CC BY-NC 4.0", 0.45), ("CC BY-NC-ND 4.0", 0.35), ("CC BY-NC-SA 4.0", 0.15), ("CC BY-NC 3.0", 0.05)),
    "other": ((None, 0.6), ("publisher-specific", 0.4)),
}
GROUP_WEIGHTS = {"commercial": 0.55, "noncommercial": 0.35, "other": 0.10}
ARTICLE_TYPES = {"research-article": 0.80, "review-article": 0.07, "case-report": 0.07, "brief-report": 0.03,
                 "methods-article": 0.02, "other": 0.01}
YEARS = np.arange(2000, 2026)
FIGURES_PER_ARTICLE = 5
_SYLLABLE_TEXT = ("ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge gi go ha he hi ho ka ke ki ko la le li lo lu "
              "ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo "
              "za ze zi zo th ph ch st tr pr cr gl pl bl an en in on un ar er ir or ur al el il ol ul ex ox ix")
_SYLLABLES = _SYLLABLE_TEXT.split()


def _choice(rng: np.random.Generator, weights: dict | tuple, n: int) -> np.ndarray:
    """Indices drawn by weight (normalised)."""
    w = np.asarray(list(weights.values()) if isinstance(weights, dict) else [x[1] for x in weights], float)
    return rng.choice(len(w), size=n, p=w / w.sum())


class Corpus:
    """A seeded synthetic caption corpus (see the module docstring)."""

    def __init__(self, vocabulary: int = 50_000, journals: int = 2_000, zipf: float = 1.07, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        words: set[str] = set()
        while len(words) < vocabulary:  # pseudo-words of 1-5 syllables (common words short, as in English)
            k = int(min(5, 1 + rng.geometric(0.45)))
            words.add("".join(rng.choice(_SYLLABLES, size=k)))
        ordered = sorted(words, key=lambda w: (len(w), w))
        tail = ordered[200:]
        rng.shuffle(tail)  # the commonest 200 are the shortest; past them length does not follow rank
        ordered = ordered[:200] + tail
        ordered[: len(FILLERS)] = FILLERS  # the commonest ranks are function words
        # biomedical terms at mid ranks (100 .. 5,000): frequent enough to be searched, rare enough to select
        slots = np.sort(rng.choice(np.arange(100, 5_000), size=len(BIOMEDICAL), replace=False))
        for slot, term in zip(slots, BIOMEDICAL):
            ordered[slot] = term
        self.vocab = np.array(ordered, dtype=object)
        ranks = np.arange(1, vocabulary + 1, dtype=np.float64)
        p = 1.0 / (ranks + 2.7) ** zipf
        self.cdf = np.cumsum(p / p.sum())
        self.journals = np.array([f"J {self._title(rng, 2, 4)}" for _ in range(journals)], dtype=object)
        jp = 1.0 / np.arange(1, journals + 1) ** 0.9
        self.journal_cdf = np.cumsum(jp / jp.sum())
        yw = np.linspace(1.0, 8.0, len(YEARS))  # PMC-OA grows: 2025 has ~8x the figures of 2000
        self.year_p = yw / yw.sum()
        self.seed = seed

    def _title(self, rng: np.random.Generator, lo: int, hi: int) -> str:
        return " ".join(w.capitalize() for w in self.words(rng, int(rng.integers(lo, hi + 1)), min_rank=20))

    def words(self, rng: np.random.Generator, n: int, min_rank: int = 0) -> list[str]:
        idx = np.searchsorted(self.cdf, rng.random(n) * (1 - self.cdf[min_rank - 1] if min_rank else 1)
                              + (self.cdf[min_rank - 1] if min_rank else 0))
        return self.vocab[np.minimum(idx, len(self.vocab) - 1)].tolist()

    def _text(self, rng: np.random.Generator, n_words: int, panels: bool) -> str:
        words = self.words(rng, n_words)
        out, i, panel = [], 0, 0
        while i < len(words):
            run = int(rng.integers(6, 16))
            chunk = words[i:i + run]
            i += run
            if panels and rng.random() < 0.35:
                out.append(f"({chr(65 + panel % 26)})")
                panel += 1
            chunk[0] = chunk[0].capitalize() if chunk[0].islower() else chunk[0]
            out.append(" ".join(chunk) + ("," if rng.random() < 0.3 else "."))
        return " ".join(out)

    def samples(self, start: int, count: int, unit: int) -> pa.Table:
        """Rows `start .. start+count` of the corpus with unit_samples' columns (group, unit, full text lists)."""
        rng = np.random.default_rng((self.seed, start))
        first_article, last_article = start // FIGURES_PER_ARTICLE, (start + count - 1) // FIGURES_PER_ARTICLE
        n_art = last_article - first_article + 1
        groups = list(GROUP_WEIGHTS)
        art_group = _choice(rng, GROUP_WEIGHTS, n_art)
        art_licence = []
        for g in art_group:
            options = LICENSES[groups[g]]
            art_licence.append(options[int(_choice(rng, options, 1)[0])][0])
        art_year = rng.choice(YEARS, size=n_art, p=self.year_p)
        art_journal = self.journals[np.minimum(np.searchsorted(self.journal_cdf, rng.random(n_art)), len(self.journals) - 1)]
        types = list(ARTICLE_TYPES)
        art_type = _choice(rng, ARTICLE_TYPES, n_art)
        art_title = [self._title(rng, 8, 16) for _ in range(n_art)]
        art_keywords = [self.words(rng, int(rng.integers(3, 7)), min_rank=50) for _ in range(n_art)]
        cols: dict[str, list] = {name: [] for name in (
            "key", "pmcid", "shard", "image_offset", "image_size", "image_format", "txt_offset", "txt_size", "json_offset", "json_size", "width",
            "height", "license", "license_group", "year", "journal", "article_type", "fig_label", "caption_title",
            "caption", "article_title", "doi", "mentions", "keywords", "group", "unit")}
        lengths = np.clip(rng.lognormal(np.log(52), 0.6, count), 8, 400).astype(int)
        n_mentions = rng.choice(4, size=count, p=[0.35, 0.35, 0.2, 0.1])
        offset = 0
        for j in range(count):
            doc = start + j
            a = doc // FIGURES_PER_ARTICLE - first_article
            group = groups[art_group[a]]
            pmcid = f"PMC{1_000_000 + doc // FIGURES_PER_ARTICLE}"
            size = int(rng.integers(40_000, 400_000))
            cols["key"].append(f"{pmcid}_{doc % FIGURES_PER_ARTICLE:03d}")
            cols["pmcid"].append(pmcid)
            cols["shard"].append(f"{unit:06d}.tar")
            cols["image_offset"].append(offset)
            cols["image_size"].append(size)
            cols["image_format"].append("jpg")
            cols["txt_offset"].append(offset + size + 512)
            cols["txt_size"].append(int(lengths[j]) * 7)
            cols["json_offset"].append(offset + size + 1024)
            cols["json_size"].append(2_000)
            offset += size + 3_000
            cols["width"].append(int(rng.integers(300, 2400)))
            cols["height"].append(int(rng.integers(200, 2000)))
            cols["license"].append(art_licence[a])
            cols["license_group"].append(group)
            cols["year"].append(int(art_year[a]))
            cols["journal"].append(art_journal[a])
            cols["article_type"].append(types[art_type[a]])
            cols["fig_label"].append(f"Figure {doc % FIGURES_PER_ARTICLE + 1}")
            cols["caption_title"].append(self._text(rng, int(rng.integers(4, 13)), False).rstrip(".,"))
            cols["caption"].append(self._text(rng, int(lengths[j]), True))
            cols["article_title"].append(art_title[a])
            cols["doi"].append(f"10.1234/bench.{doc // FIGURES_PER_ARTICLE}")
            cols["mentions"].append([self._text(rng, int(rng.integers(25, 60)), False) for _ in range(n_mentions[j])])
            cols["keywords"].append(art_keywords[a])
            cols["group"].append(group)
            cols["unit"].append(unit)
        types_ = {"image_offset": pa.int64(), "image_size": pa.int64(), "txt_offset": pa.int64(), "txt_size": pa.int64(),
                  "json_offset": pa.int64(), "json_size": pa.int64(),
                  "width": pa.int32(), "height": pa.int32(), "year": pa.int32(), "unit": pa.int64(),
                  "mentions": pa.list_(pa.string()), "keywords": pa.list_(pa.string())}
        table = pa.table({name: pa.array(values, types_.get(name, pa.string())) for name, values in cols.items()})
        # unit_samples' row order: licence groups in turn (each its own shard), shard rows in order
        order = np.argsort(art_group[np.arange(start, start + count) // FIGURES_PER_ARTICLE - first_article], kind="stable")
        return table.take(pa.array(order))

    def queries(self, n: int, seed: int = 7) -> list[str]:
        """n queries of 1-3 terms (50/35/15%) drawn by frequency from ranks >= 30 (content words, no fillers);
        a third of them lead with a biomedical term, as searchers in this field type them."""
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            k = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
            terms = self.words(rng, k, min_rank=30)
            if rng.random() < 1 / 3:
                terms[0] = str(rng.choice(BIOMEDICAL))
            out.append(" ".join(terms))
        return out
