"""The model card written with every export (one per exported file), and the run's metrics.

The card opens with a Hugging Face YAML header (`library_name`, `tags`, `license`, `metrics`,
`pipeline_tag`), then says what the model is (backbone, weights, head, input), what it is for,
how to feed it in its format (the preprocessing, with a runnable snippet), what it learned from
(classes, counts per split, imbalance, shot bands), how well it did (overall and per shot band,
per class, from the evaluation of the exported checkpoint's epoch in `metrics.jsonl`), its known
limits (classes with few training images, classes never validated, weak classes), the licence
of the pretrained weights and the library versions that wrote it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.data.stats import SHOT_BANDS, DatasetStats, shot_band
from workbench.deploy.card_sections import (
    front_matter,
    intended_use_section,
    provenance_section,
    usage_section,
)
from workbench.deploy.files import atomic_write
from workbench.errors import UserError

WEAK_ACCURACY = 0.5  # a class validated below this is listed among the limits


def run_metrics(trained: Any) -> dict[str, Any]:
    """The evaluation recorded for the checkpoint's epoch: `epoch` and the `EvalMetrics` fields
    (`balanced_acc`, `top1`, `loss`, `shot_acc`, `per_class_acc`, `bands`, ...); `{}` if none."""
    from workbench.train.rundir import read_events

    epoch = trained.state.get("epoch")
    evals = [e for e in read_events(trained.run_dir) if e.get("event") == "EvalDone"]
    chosen = [e for e in evals if e.get("epoch") == epoch] or evals[-1:]
    if not chosen:
        return {}
    metrics = dict(chosen[-1].get("metrics") or {})
    metrics.pop("confusion", None)  # per-class counts are in the card's table
    return {"epoch": chosen[-1].get("epoch"), **metrics}


def dataset_statistics(trained: Any) -> tuple[DatasetStats | None, str]:
    """The run's dataset statistics, listed again from `data.path` (no image decoded), and a
    note when the dataset cannot be read any more (then None)."""
    from workbench.data.stats import dataset_stats
    from workbench.train.setup import load_index

    try:
        index = load_index(trained.plan.config, None)
    except (UserError, OSError) as exc:
        return None, f"the dataset could not be listed again ({exc})"
    if list(index.class_names) != trained.class_names:
        return None, (f"the dataset at {index.root} no longer has the run's classes; "
                      f"counts are not shown")
    return dataset_stats(index), ""


def model_card(trained: Any, exported: Path | None = None,
               info: dict[str, Any] | None = None) -> str:
    """The card's Markdown text; `info` is the export's metadata (`export.model_info`), whose
    format decides the header, the preprocessing and the snippet."""
    stats, note = dataset_statistics(trained)
    metrics = run_metrics(trained)
    lines = front_matter(trained, info)
    lines += [f"# Model card: {trained.plan.backbone} on {len(trained.class_names)} classes", ""]
    lines += _model_section(trained, exported, info)
    lines += intended_use_section(trained)
    if info is not None and exported is not None:
        lines += usage_section(info, exported)
    lines += _data_section(trained, stats, note)
    lines += _metrics_section(metrics)
    lines += _class_table(trained, stats, metrics)
    lines += _limits_section(trained, stats, metrics)
    lines += provenance_section(trained, info)
    lines += ["## Configuration", "", "```toml", _config_toml(trained).rstrip(), "```", ""]
    return "\n".join(lines)


def write_model_card(trained: Any, path: str | os.PathLike[str], exported: Path | None = None,
                     info: dict[str, Any] | None = None) -> Path:
    """Write `model_card(...)` to `path` (atomically) and return it."""
    target = Path(path)
    text = model_card(trained, exported, info)
    atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return target


def _model_section(trained: Any, exported: Path | None,
                   info: dict[str, Any] | None) -> list[str]:
    plan = trained.plan
    lines = ["## Model", ""]
    lines += [f"- {line}" for line in plan.summary()[:1]]
    lines += [f"- Run: `{trained.run_dir}`, checkpoint `{trained.checkpoint.name}` "
              f"(epoch {trained.state.get('epoch', '?')})",
              f"- Input: RGB, shorter side resized then center-cropped to {plan.input_size} px",
              f"- Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"]
    if exported is not None:
        fmt = f" ({info['format']})" if info else ""
        lines.append(f"- Exported file: `{exported.name}`{fmt}")
    return lines + [""]


def _data_section(trained: Any, stats: DatasetStats | None, note: str) -> list[str]:
    lines = ["## Data", "", f"- Dataset: `{trained.plan.config.data.path}`",
             f"- Classes: {len(trained.class_names)}"]
    if stats is None:
        return lines + [f"- {note}", ""]
    splits = ", ".join(f"{name} {count}" for name, count in stats.split_counts.items())
    ipc = stats.images_per_class
    lines += [f"- Images: {stats.num_images} ({splits})",
              f"- Training images per class: min {ipc['min']:.0f}, median {ipc['median']:.0f}, "
              f"max {ipc['max']:.0f}; imbalance ratio {stats.imbalance_ratio:.1f}",
              "- Shot bands (training images per class): "
              + "; ".join(f"{band}: {len(stats.bands[band])} classes" for band in SHOT_BANDS)]
    return lines + [""]


def _metrics_section(metrics: dict[str, Any]) -> list[str]:
    lines = ["## Metrics", ""]
    if not metrics:
        return lines + ["No evaluation was recorded for this run.", ""]
    lines += [f"Validation, epoch {metrics.get('epoch')} "
              f"({metrics.get('num_images', '?')} images):", "",
              f"- Balanced accuracy: {_pct(metrics.get('balanced_acc'))}",
              f"- Top-1 accuracy: {_pct(metrics.get('top1'))}",
              f"- Loss: {_num(metrics.get('loss'))}"]
    shot = metrics.get("shot_acc") or {}
    lines += [f"- {band} classes: {_pct(shot.get(band))}" for band in SHOT_BANDS]
    return lines + [""]


def _class_table(trained: Any, stats: DatasetStats | None,
                 metrics: dict[str, Any]) -> list[str]:
    accuracy = metrics.get("per_class_acc") or {}
    bands = metrics.get("bands") or {}
    lines = ["## Classes", "", "| class | train | val | band | val accuracy |",
             "| --- | ---: | ---: | --- | ---: |"]
    for name in trained.class_names:
        train = stats.train_counts().get(name, 0) if stats else None
        val = _val_counts(stats).get(name, 0) if stats else None
        band = bands.get(name) or (shot_band(train) if train is not None else "?")
        lines.append(f"| {name} | {_int(train)} | {_int(val)} | {band} | "
                     f"{_pct(accuracy.get(name))} |")
    return lines + [""]


def _limits_section(trained: Any, stats: DatasetStats | None,
                    metrics: dict[str, Any]) -> list[str]:
    accuracy = metrics.get("per_class_acc") or {}
    few = stats.bands.get("few", []) if stats else [
        n for n, b in (metrics.get("bands") or {}).items() if b == "few"]
    unvalidated = [n for n in trained.class_names if accuracy.get(n) is None]
    weak = [n for n in trained.class_names
            if accuracy.get(n) is not None and accuracy[n] < WEAK_ACCURACY]
    lines = ["## Known limits", ""]
    if few:
        lines.append(f"- Few training images (the 'few' band): {', '.join(few)}; expect lower "
                     f"and less stable accuracy on these classes.")
    if unvalidated:
        lines.append(f"- Not validated (no validation images): {', '.join(unvalidated)}.")
    if weak:
        lines.append(f"- Validated below {WEAK_ACCURACY:.0%}: {', '.join(weak)}.")
    lines += ["- The model only knows these classes: any input gets one of them, so an image of "
              "something else is still classified, often confidently.",
              "- Accuracy was measured on this dataset's validation split; images from another "
              "source (camera, lighting, framing) may score lower.", ""]
    return lines


def _val_counts(stats: DatasetStats) -> dict[str, int]:
    for split in ("val", "test"):
        if split in stats.class_counts:
            return stats.class_counts[split]
    return {}


def _config_toml(trained: Any) -> str:
    from workbench.train.rundir import CONFIG_NAME

    file = Path(trained.run_dir) / CONFIG_NAME
    try:
        return file.read_text(encoding="utf-8")
    except OSError:
        return "# config.toml could not be read"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def _int(value: int | None) -> str:
    return "?" if value is None else str(value)
