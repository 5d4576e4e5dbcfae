"""The bench's result as a table for people (the JSON object is for programs)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["render_table"]

_BUSY_CORES = 0.25  # other processes' CPU (cores) above which the table warns


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _agreement_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if "label_agreement" in r:
        rows += [
            (
                f"label agreement vs float32 ({r['agreement_n']} comments)",
                f"{100 * r['label_agreement']:.2f}% (max |Δp| {r['prob_max_abs_diff']:.4f}; "
                f"{100 * r['near_threshold_fraction']:.1f}% of comments within 0.01 of a threshold)",
            ),
            (
                "model only, in-process (comments/s)",
                f"{_fmt(r['model_only_comments_per_s'])} {r['dtype']}, "
                f"{_fmt(r['float32_model_only_comments_per_s'])} float32",
            ),
        ]
    for name, e in (r.get("engines") or {}).items():
        small = ", ".join(f"{_fmt(e[k])} at batch {k.rsplit('_', 1)[1]}" for k in e if k.startswith("comments_per_s_"))
        rows.append(
            (
                f"  {name}, in-process, {r.get('engines_threads', '?')} thread(s)",
                f"{_fmt(e['comments_per_s'])} comments/s{', ' + small if small else ''}; label agreement "
                f"{_fmt(100 * e['label_agreement'] if e['label_agreement'] is not None else None, 2)}%"
                + (
                    f"; {100 * e['fraction_of_ceiling']:.0f}% of the ceiling as {r['workers']} worker(s)"
                    if e.get("fraction_of_ceiling") is not None
                    else ""
                ),
            )
        )
    return rows


def _cpu_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    features = r.get("cpu_features") or {}
    have = [name for name, present in features.items() if present]
    emulated = r.get("cpu_emulated")
    return [
        (
            "CPU",
            f"{r.get('cpu_model', 'unknown')} ({os_cores(r)}); "
            f"{', '.join(have) if have else 'none of ' + ', '.join(features)}"
            + (f"; emulating the {emulated} class (--emulate-cpu: CPUID hides the rest)" if emulated else ""),
        )
    ]


def os_cores(r: dict[str, Any]) -> str:
    return f"{r['threads']} thread(s) in the bench process"


def _run_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    extra = f", measured on {r['baseline_n']} of {r['n']}" if r["baseline_extrapolated"] else ""
    busy = r.get("half_load_model_busy")
    return [
        (
            "baseline: model card code, 1 comment at a time, float32",
            f"{_fmt(r['baseline_comments_per_s'])} comments/s{extra}",
        ),
        (f"worker, saturated ({r['n']} comments)", f"{_fmt(r['worker_comments_per_s'])} comments/s"),
        ("speedup", f"{r['speedup']:.1f}×"),
        (
            "latency p50 / p95 / p99, saturated (ms)",
            f"{_fmt(r['latency_ms_p50'], 0)} / {_fmt(r['latency_ms_p95'], 0)} / {_fmt(r['latency_ms_p99'], 0)}",
        ),
        (
            f"half load ({r['half_load_n']} at {r['half_load_rate']:.1f}/s): latency p50 / p99 (ms), models busy",
            f"{_fmt(r['half_load_latency_ms_p50'], 0)} / {_fmt(r['half_load_latency_ms_p99'], 0)}, "
            f"{_fmt(None if busy is None else 100 * busy, 0)}%",
        ),
        (
            "batches: mean size, real/padded tokens",
            f"{_fmt(r.get('mean_batch_size'))}, {_fmt(r.get('padding_fill'), 2)}",
        ),
        (
            "matrix multiply (measured), by dtype",
            ", ".join(f"{d} {v * 1000:,.0f}" for d, v in (r.get("matmul_tflops_by_dtype") or {}).items()) + " GFLOP/s",
        ),
        (
            "model FLOPs per comment",
            f"{r['gflops_per_comment']:.2f} GFLOP at {r['mean_tokens_per_comment']:.1f} tokens (mean)",
        ),
        (
            f"compute-bound ceiling (best dtype: {r.get('ceiling_dtype')})",
            f"{_fmt(r['compute_bound_comments_per_s'])} comments/s ({r['dtype']}: "
            f"{_fmt(r.get('chosen_dtype_compute_bound_comments_per_s'))})",
        ),
        ("fraction of ceiling", f"{100 * r['fraction_of_ceiling']:.0f}%"),
        ("worker labels = baseline labels", f"{100 * r['baseline_label_agreement']:.1f}% of baseline comments"),
        (
            "other processes' CPU: baseline / saturated / half load (cores)",
            f"{_fmt(r['other_cpu_cores_baseline'], 2)} / {_fmt(r['other_cpu_cores_worker'], 2)} / "
            f"{_fmt(r.get('other_cpu_cores_half_load'), 2)}",
        ),
    ]


def _host_path_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            f"host path: one worker process, saturated ({r['n']} comments)",
            f"{_fmt(r['host_path_comments_per_s'])} comments/s",
        ),
        (
            "latency p50 / p95 / p99, saturated (ms)",
            f"{_fmt(r['latency_ms_p50'], 0)} / {_fmt(r['latency_ms_p95'], 0)} / {_fmt(r['latency_ms_p99'], 0)}",
        ),
        (
            f"half load ({r['half_load_n']} at {r['half_load_rate']:.1f}/s): latency p50 / p99 (ms)",
            f"{_fmt(r['half_load_latency_ms_p50'], 0)} / {_fmt(r['half_load_latency_ms_p99'], 0)}",
        ),
        ("batches: mean size", _fmt(r.get("mean_batch_size"))),
        (
            "other processes' CPU: saturated / half load (cores)",
            f"{_fmt(r['other_cpu_cores_worker'], 2)} / {_fmt(r.get('other_cpu_cores_half_load'), 2)}",
        ),
    ]


def _cascade_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    c = r["cascade"]
    stages = ", ".join(
        f"{name} {100 * s['share']:.0f}% of comments, {s['seconds']:.2f} s" for name, s in c["stages"].items()
    )
    return [
        (
            f"pipeline, in-process ({c['n']} comments): first stage alone / whole cascade",
            f"{_fmt(c['first_stage_comments_per_s'])} / {_fmt(c['cascade_comments_per_s'])} comments/s "
            f"(cost ×{c['cost_vs_first_stage']:.2f})",
        ),
        ("pipeline stages", stages),
    ]


def render_table(r: dict[str, Any]) -> str:
    """``r``: the bench's JSON object."""
    null = r.get("backend") == "null"
    model = (
        "none: the null stand-in (fixed scores, no network)"
        if null
        else f"{r['model']}{' (untrained)' if r['untrained'] else ''}"
    )
    rows: list[tuple[str, str]] = [
        ("model", model),
        *_cpu_rows(r),
        (
            "device / backend / dtype",
            f"{r['device']} / {r.get('backend')} / {r['dtype']} (workers: {r['workers']} × "
            f"{r['worker_threads']} thread(s))",
        ),
    ]
    rows += _agreement_rows(r)
    if "cascade" in r:
        rows += _cascade_rows(r)
    if "speedup" in r:
        rows += _run_rows(r)
    if null and "host_path_comments_per_s" in r:
        rows += _host_path_rows(r)
    busy = [r.get(k) for k in ("other_cpu_cores_baseline", "other_cpu_cores_worker", "other_cpu_cores_half_load")]
    if any(isinstance(v, float) and v > _BUSY_CORES for v in busy):
        rows.append(
            (
                "note",
                "other processes used the CPU during the run: numbers are lower and noisier than on an idle machine",
            )
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
