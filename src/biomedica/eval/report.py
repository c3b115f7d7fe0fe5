"""Compare models from their result JSONs: a Markdown table (tasks by domain, domain and overall means) and a PNG per domain.

Means are unweighted over tasks (each task counts once, as DataComp); their 95% CIs come from
averaging the tasks' stored bootstrap replicates index by index. Nothing is re-embedded, so
a report takes seconds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biomedica.eval import metrics as M


@dataclass
class ReportTable:
    models: list[str]
    domains: dict[str, list[str]]  # domain -> task names (sorted)
    metric_of: dict[str, str]  # task -> primary metric
    cells: dict[tuple[str, str], dict]  # (model, task) -> result
    domain_means: dict[tuple[str, str], tuple[float, float, float, int]] = field(default_factory=dict)
    overall: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)


@dataclass
class ReportFiles:
    markdown: Path
    plots: list[Path]
    table: ReportTable


def load_results(paths: list[Path]) -> list[dict]:
    """Every result JSON under the given files/folders (files without task_name/model are ignored)."""
    results = []
    for path in paths:
        path = Path(path)
        files = [path] if path.is_file() else sorted(path.rglob("*.json"))
        for file in files:
            if ".embedding-cache" in file.parts:
                continue
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(data, dict) and "task_name" in data and "model" in data and "score" in data:
                results.append(data)
    return results


def _mean_with_ci(results: list[dict]) -> tuple[float, float, float, int]:
    scores = {r["task_name"]: (np.nan if r["score"] is None else r["score"]) for r in results}
    mean = M.unweighted_mean(scores)
    replicates = [np.array([np.nan if v is None else v for v in r.get("bootstrap") or []], dtype=float) for r in results]
    low, high = M.mean_of_replicates(replicates)
    return mean, low, high, len(results)


def build_table(results: list[dict]) -> ReportTable:
    """Arrange results by (model, task); later files win for duplicate (model, task) pairs."""
    cells: dict[tuple[str, str], dict] = {}
    domains: dict[str, set[str]] = defaultdict(set)
    metric_of: dict[str, str] = {}
    models: list[str] = []
    for result in results:
        # a model is its exact spec (`tiny-random` is not `biomedica-tiny:/x/epoch_3.pt`); older results: the name
        model, task = result["model"].get("spec") or result["model"]["name"], result["task_name"]
        if model not in models:
            models.append(model)
        cells[(model, task)] = result
        domains[result["domain"]].add(task)
        metric_of[task] = result["primary_metric"]
    table = ReportTable(
        models=models,
        domains={d: sorted(t) for d, t in sorted(domains.items())},
        metric_of=metric_of,
        cells=cells,
    )
    for model in models:
        for domain, tasks in table.domains.items():
            present = [cells[(model, t)] for t in tasks if (model, t) in cells]
            if present:
                table.domain_means[(model, domain)] = _mean_with_ci(present)
        table.overall[model] = _mean_with_ci([r for (m, _), r in cells.items() if m == model])
    return table


def _format(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    text = f"{100 * value:.1f}"
    if low is not None and high is not None and not (np.isnan(low) or np.isnan(high)):
        text += f" [{100 * low:.1f}, {100 * high:.1f}]"
    return text


def render_markdown(table: ReportTable) -> str:
    """The comparison table: one row per task, domain means in bold, the overall mean last."""
    header = ["domain", "task", "metric", *table.models]
    lines = [
        "# biomedica eval report",
        "",
        "Scores in % with bootstrap 95% CIs; domain and overall means are unweighted over tasks.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * len(table.models)) + "|",
    ]
    for domain, tasks in table.domains.items():
        for task in tasks:
            row = [domain, task, table.metric_of[task]]
            for model in table.models:
                result = table.cells.get((model, task))
                ci = (result or {}).get("score_ci95") or [None, None]
                row.append(_format(result["score"], *ci) if result else "–")
            lines.append("| " + " | ".join(row) + " |")
        row = [f"**{domain}**", "**mean**", ""]
        for model in table.models:
            mean = table.domain_means.get((model, domain))
            row.append(f"**{_format(*mean[:3])}**" if mean else "–")
        lines.append("| " + " | ".join(row) + " |")
    row = ["**overall**", "**mean over tasks**", ""]
    for model in table.models:
        mean, low, high, n = table.overall[model]
        row.append(f"**{_format(mean, low, high)}** ({n} tasks)")
    lines.append("| " + " | ".join(row) + " |")
    counts = {m: table.overall[m][3] for m in table.models}
    if len(set(counts.values())) > 1:
        lines += ["", "Note: models were evaluated on different task sets; compare overall means with care."]
    return "\n".join(lines) + "\n"


def plot_domains(table: ReportTable, out_dir: Path) -> list[Path]:
    """One grouped bar chart per domain (tasks x models, CI error bars), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for domain, tasks in table.domains.items():
        figure, axes = plt.subplots(figsize=(max(4.0, 1.2 * len(tasks) * max(1, len(table.models)) + 1.5), 3.6))
        width = 0.8 / max(1, len(table.models))
        positions = np.arange(len(tasks))
        for i, model in enumerate(table.models):
            values, errors = [], [[], []]
            for task in tasks:
                result = table.cells.get((model, task))
                score = np.nan if not result or result["score"] is None else 100 * result["score"]
                low, high = ((result or {}).get("score_ci95") or [None, None])
                values.append(score)
                errors[0].append(0 if low is None or np.isnan(score) else score - 100 * low)
                errors[1].append(0 if high is None or np.isnan(score) else 100 * high - score)
            axes.bar(positions + i * width - 0.4 + width / 2, values, width, yerr=errors, capsize=2, label=model)
        axes.set_xticks(positions, tasks, rotation=20, ha="right")
        axes.set_ylabel("score (%)")
        axes.set_ylim(0, 100)
        axes.set_title(f"{domain}")
        axes.legend(fontsize=7, loc="upper right")
        figure.tight_layout()
        path = out_dir / f"{domain}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path)
    return paths


def write_report(result_paths: list[Path], out_dir: Path, plots: bool = True) -> ReportFiles:
    """Read results, write `report.md` and `plots/<domain>.png` under out_dir."""
    results = load_results(result_paths)
    if not results:
        raise FileNotFoundError(
            f"no result JSON found under {', '.join(map(str, result_paths))}; run `biomedica eval run` first"
        )
    table = build_table(results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / "report.md"
    markdown.write_text(render_markdown(table), encoding="utf-8")
    return ReportFiles(markdown, plot_domains(table, out_dir / "plots") if plots else [], table)
