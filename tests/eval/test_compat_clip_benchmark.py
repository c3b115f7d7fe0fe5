"""Same weights, same images: our harness and CLIP_benchmark 1.6.2's own evaluation code give the same numbers.

CLIP_benchmark is installed without its dependencies (`pip install --no-deps clip-benchmark==1.6.2`,
as scripts/test.sh does): its metric modules import only torch, tqdm and scikit-learn, which the
eval extra has; its declared transformers and pycocoevalcap (~120 MB, captioning only) are not
needed here. Its accuracy() calls float() on a 1-element array, which NumPy 2 refuses
("only 0-dimensional arrays can be converted"); the test runs its unchanged code with a
module-level `float` that accepts such arrays (NumPy 1 behaviour) instead of pinning NumPy.
"""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

from biomedica.eval.adapters import EvalDataset, load_dataset
from biomedica.eval.formats import clip_benchmark_metrics, clip_benchmark_record, write_clip_benchmark
from biomedica.eval.runner import EvalConfig, evaluate_task, run_evaluation
from biomedica.eval.scoring import score_multilabel
from biomedica.eval.tasks import load_task_file, parse_task

zc = pytest.importorskip(
    "clip_benchmark.metrics.zeroshot_classification", reason="pip install --no-deps clip-benchmark==1.6.2"
)
zr = pytest.importorskip("clip_benchmark.metrics.zeroshot_retrieval")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow


def _numpy1_float(value=0.0):
    """float() as NumPy 1.x allowed it: a size-1 array becomes its element (CLIP_benchmark's accuracy() needs it)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    return builtins.float(value)


@pytest.fixture
def numpy2_workaround(monkeypatch):
    if int(np.__version__.split(".")[0]) >= 2:
        with pytest.raises(TypeError, match="0-dimensional"):  # the break this works around (fails once fixed upstream)
            zc.accuracy(torch.eye(3), torch.arange(3), topk=(1,))
        monkeypatch.setattr(zc, "float", _numpy1_float, raising=False)


class _Images(torch.utils.data.Dataset):
    """The same decoded pixels our harness embeds (EvalDataset image refs at the model's side, its preprocess)."""

    def __init__(self, model, refs, targets, classes):
        self.model, self.refs, self.targets, self.classes = model, refs, targets, classes

    def __len__(self):
        return len(self.refs)

    def __getitem__(self, i):
        return self.model.preprocess(self.refs[i].load(self.model.image_size)), self.targets[i]


def _close(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if np.isnan(value):
            assert np.isnan(ours[key]), key
        else:
            assert ours[key] == pytest.approx(value, abs=1e-6), key  # our JSON keeps 6 decimals


def test_zero_shot_classification_equals_clip_benchmark(offline_benchmark, tiny_model, tmp_path, numpy2_workaround):
    task = load_task_file(offline_benchmark.task_file)
    config = EvalConfig(out_dir=tmp_path / "results", n_boot=0, use_cache=False, result_format="clip_benchmark")
    [outcome] = run_evaluation(tiny_model, [task], config, log=lambda line: None)
    ours = outcome.result
    refs, labels = _offline_refs(offline_benchmark, task)
    # every (name, template) prompt of a class, exactly as ours: CLIP_benchmark's per-class prompt dict (CuPL form)
    prompts = ours["prompts"]
    class_keys = list(task.class_labels)
    templates = {
        key: [t.replace("{c}", name) for name in names for t in prompts["templates"]]
        for key, names in zip(class_keys, prompts["class_names"])
    }
    loader = torch.utils.data.DataLoader(_Images(tiny_model, refs, labels, class_keys), batch_size=64)
    theirs = zc.evaluate(tiny_model, loader, tiny_model.tokenizer, class_keys, templates, "cpu", amp=False)
    _close(clip_benchmark_metrics(ours), theirs)
    assert ours["metrics"]["accuracy"] == pytest.approx(theirs["acc1"], abs=1e-6)
    assert ours["metrics"]["balanced_accuracy"] == pytest.approx(theirs["mean_per_class_recall"], abs=1e-6)
    # the file --format clip_benchmark wrote: CLIP_benchmark's dump keys, its default file name
    [written] = (outcome.result_path.parent / "clip_benchmark").glob("*.json")
    assert written.name == "offline-modality_random@0_biomedica-tiny_en_zeroshot_classification.json"
    record = json.loads(written.read_text())
    assert list(record) == ["dataset", "model", "pretrained", "task", "metrics", "language"]
    assert record["task"] == "zeroshot_classification" and record["language"] == "en"
    _close(record["metrics"], theirs)


def _offline_refs(benchmark, task):
    """(image refs, int labels) of the offline benchmark in our adapter's order."""
    dataset = load_dataset(task.dataset.adapter, benchmark.root, task.dataset.options)
    index = {label: i for i, label in enumerate(task.class_labels)}
    return dataset.images, [index[label] for label in dataset.labels]


def test_zero_shot_retrieval_equals_clip_benchmark(offline_benchmark, tiny_model, tmp_path):
    task = load_task_file(offline_benchmark.task_file)
    refs, labels = _offline_refs(offline_benchmark, task)
    refs = refs[::4]  # 80 images, two distinct captions each (no two texts alike: no ties)
    captions = [[f"{task.classes[labels[4 * i]].names[0]} number {i}", f"image {i} of the offline benchmark"]
                for i in range(len(refs))]
    dataset = EvalDataset(images=refs, captions=captions)
    dataset.compute_fingerprint("test-retrieval", {})
    retrieval = parse_task({"name": "offline-retrieval", "domain": "test", "kind": "retrieval",
                            "dataset": {"adapter": "imagefolder", "root": str(offline_benchmark.root)}})
    config = EvalConfig(out_dir=tmp_path / "results", n_boot=0, use_cache=False)
    ours = evaluate_task(tiny_model, retrieval, config, dataset)

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return len(refs)

        def __getitem__(self, i):
            return tiny_model.preprocess(refs[i].load(tiny_model.image_size)), captions[i]

    def collate(batch):  # CLIP_benchmark's image_captions_collate_fn: stacked images, list of caption lists
        return torch.stack([image for image, _ in batch]), [texts for _, texts in batch]

    loader = torch.utils.data.DataLoader(Pairs(), batch_size=32, collate_fn=collate)
    theirs = zr.evaluate(tiny_model, loader, tiny_model.tokenizer, "cpu", amp=False, recall_k_list=[1, 5, 10])
    _close(clip_benchmark_metrics(ours), theirs)
    record = clip_benchmark_record(ours)
    assert record["task"] == "zeroshot_retrieval" and record["model"] == "biomedica-tiny"
    path = write_clip_benchmark(ours, tmp_path / "cb")
    assert path.name == "offline-retrieval_random@0_biomedica-tiny_en_zeroshot_retrieval.json"


def test_multilabel_map_equals_clip_benchmark_including_classes_without_positives():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 4)).astype(np.float32)
    targets = rng.random((60, 4)) < 0.3
    targets[:, 3] = False  # a class without positives: CLIP_benchmark counts its AP as 0
    scored = score_multilabel(scores, targets, ["a", "b", "c", "d"], n_boot=0, seed=0)
    result = {"kind": "multilabel", "metrics": scored["metrics"], "per_class": scored["per_class"]}
    theirs = zc.average_precision_per_class(torch.from_numpy(scores), torch.from_numpy(targets)).mean().item()
    assert clip_benchmark_metrics(result)["mean_average_precision"] == pytest.approx(theirs, abs=1e-6)
    assert scored["metrics"]["mean_average_precision"] != pytest.approx(theirs, abs=1e-3)  # ours: positives only
