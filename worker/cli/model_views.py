"""What ``model list`` and ``model show`` print: a table of versions and candidates (CJK-aware columns), one
version's manifest in lines, or JSON."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..display import cell, fit
from ..model.heads import HeadSpec
from ..model.manage import Entry
from ..model.onnx_export import PUBLISHED_DIR
from ..model.repository import Manifest
from ..model.stages import StageSpec

__all__ = ["entry_json", "show_lines", "table_lines"]


def _stages(specs: Sequence[StageSpec | HeadSpec]) -> str:
    return " → ".join(s.name + (f" (when {s.when})" if s.when else "") for s in specs)


def _origin(manifest: Manifest) -> str:
    if manifest.pipeline:
        where = f"pipeline: {_stages(manifest.pipeline)}"
    elif manifest.heads:
        where = f"multi-task heads: {_stages(manifest.heads)}"
    elif manifest.source is not None:
        where = manifest.source.describe()
    elif manifest.training_args.get("untrained"):
        where = "untrained (model init)"
    else:
        where = "trained" if manifest.training_args else "-"
    return f"{manifest.copy_of.describe()}; {where}" if manifest.copy_of else where


def _score(manifest: Manifest) -> str:
    for key in ("test", "validation"):
        found = manifest.metrics.get(key)
        if isinstance(found, dict) and isinstance(found.get("micro_f1"), int | float):
            return f"{key} micro F1 {found['micro_f1']:.3f}"
    return "-"


def _when(manifest: Manifest) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(manifest.created_at))


def _row(entry: Entry) -> str:
    mark = "served" if entry.served else ""
    if entry.manifest is None:
        return f"{entry.number:>5}  {mark:<6}  {entry.problem}"
    m = entry.manifest
    line = (
        f"{entry.number:>5}  {mark:<6}  {cell(', '.join(m.labels), 32)}  {cell(_origin(m), 40)}  "
        f"{cell(_score(m), 24)}  {_when(m)}"
    )
    return line + (f"  ({entry.problem})" if entry.problem else "")


def table_lines(repo: Path, versions: list[Entry], candidates: list[Entry]) -> list[str]:
    lines = [
        f"model repository {repo}: {len(versions)} version(s); workers serve the newest complete one "
        "(skipping any that does not load)"
    ]
    header = f"{'N':>5}  {'':<6}  {cell('labels', 32)}  {cell('source', 40)}  {cell('metrics', 24)}  published"
    if versions:
        lines += [header, *(_row(e) for e in versions)]
    if candidates:
        lines += [
            "",
            f"candidates (kept back by the publish gate; `livetopic model promote N`), in {repo}/candidates:",
            header,
            *(_row(e) for e in candidates),
        ]
    return lines


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _source_lines(manifest: Manifest) -> list[str]:
    source = manifest.source
    if source is None:
        return [f"source      {_origin(manifest)}"]
    lines = [f"source      {source.describe()}" + (f" (revision {source.revision})" if source.revision else "")]
    for name, record in sorted(source.files.items()):
        lines.append(f"            {name}  {_size(record.size)}  sha256 {record.sha256}")
    lines += [f"            {old} converted to {new}" for old, new in source.converted.items()]
    if source.labels:
        lines.append(f"            labels as published: {', '.join(source.labels)}")
    return lines


def show_lines(entry: Entry) -> list[str]:
    if entry.manifest is None:
        return [f"{entry.path}: {entry.problem}"]
    m = entry.manifest
    multi = m.problem_type == "multi_label_classification"
    decision = (
        "multi-label: sigmoid, thresholds " + ", ".join(f"{lb} {m.threshold(lb):g}" for lb in m.labels)
        if multi
        else "single-label: softmax, the top label"
    )
    p = m.preprocessing
    graphs = sorted(n.removeprefix(f"{PUBLISHED_DIR}/") for n in m.files if n.startswith(f"{PUBLISHED_DIR}/"))
    lines = [
        f"{entry.path}" + (" (served)" if entry.served else "") + (f" ({entry.problem})" if entry.problem else ""),
        f"name        {m.name}",
        f"labels      {', '.join(m.labels)}",
        f"decision    {decision}",
        f"text        preprocessing {p.mode}, lowercase {'yes' if p.lowercase else 'no'}, whitespace "
        f"{'normalised' if p.normalize_whitespace else 'as is'}; at most {m.max_length} tokens",
        *_source_lines(m),
    ]
    if m.pipeline:  # each stage has its own decision, text handling and graphs (its own manifest)
        graphs = sorted(n for n in m.files if n.split("/")[-2:-1] == [PUBLISHED_DIR])
        where = "; ".join(
            f"{s.name} in {s.path}/" if s.path else f"{s.name} from {s.repo}:{s.version}" for s in m.pipeline
        )
        lines[3:5] = [
            f"decision    the first stage's ({m.pipeline[0].name}); each stage's own manifest "
            "(<stage>/livetopic.json) says its decision and text handling",
            f"pipeline    {where}",
        ]
    if m.copy_of:
        lines.append(f"copy of     {m.copy_of.describe()}")
    lines.append(
        f"files       {len(m.files)}, {_size(sum(r.size for r in m.files.values()))}; ONNX graphs: "
        f"{', '.join(graphs) or 'none (exported by each worker that serves it with ONNX Runtime)'}"
    )
    if m.dtype_agreement:
        lines.append("agreement   " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in sorted(m.dtype_agreement.items())))
    for cpu, rates in sorted(m.engine_rates.items()):
        ranked = sorted(rates.items(), key=lambda item: -item[1])
        lines.append(f"rates       {cpu} CPUs: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in ranked))
    verdict = m.metrics.get("publish")
    if isinstance(verdict, dict) and verdict.get("reason"):
        lines.append(f"gate        {fit(str(verdict['reason']), 160)}")
    lines += [f"metrics     {_score(m)}", f"published   {_when(m)}"]
    return lines


def entry_json(entry: Entry, *, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "number": entry.number,
        "path": str(entry.path),
        "served": entry.served,
        "problem": entry.problem,
    }
    m = entry.manifest
    if m is None:
        return out
    if full:
        return {**out, "manifest": m.model_dump(mode="json")}
    return {
        **out,
        "name": m.name,
        "labels": m.labels,
        "problem_type": m.problem_type,
        "origin": _origin(m),
        "source": m.source.model_dump(mode="json", exclude={"files"}) if m.source else None,
        "copy_of": m.copy_of.model_dump(mode="json") if m.copy_of else None,
        "score": _score(m),
        "pipeline": [s.model_dump(mode="json", exclude_none=True) for s in m.pipeline],
        "created_at": m.created_at,
    }
