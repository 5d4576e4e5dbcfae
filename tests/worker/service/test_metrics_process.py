"""/metrics carries the standard process and Python collectors (RSS, CPU, start time: restarts show) and
livetopic's own version, in each worker's registry."""

from __future__ import annotations

import platform

from prometheus_client import generate_latest

from worker import package_version
from worker.service.metrics import Metrics


def test_process_python_and_build_info_series() -> None:
    text = generate_latest(Metrics().registry).decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    for name in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
        "python_info",
        "python_gc_objects_collected_total",
    ):
        assert name in names, name
    assert f'livetopic_build_info{{python="{platform.python_version()}",version="{package_version()}"}} 1.0' in text
    assert package_version() != "unknown"  # installed: the version comes from the package's metadata


def test_two_workers_in_one_process_each_have_them() -> None:
    first, second = Metrics(), Metrics()
    for metrics in (first, second):
        assert "process_resident_memory_bytes" in generate_latest(metrics.registry).decode()
