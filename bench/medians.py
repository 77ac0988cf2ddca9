"""What the side-by-side benches print: each side's median over its rounds, and their ratio."""

from __future__ import annotations

import statistics


def print_comparison(title: str, times: dict[str, list[float]]) -> float:
    """`times` holds two sides, the measured one first and the baseline second (seconds per round);
    prints every round, the medians and their ratio; returns the ratio."""
    (measured, measured_times), (baseline, baseline_times) = times.items()
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.1f} s of {', '.join(f'{v:.1f}' for v in values)}")
    ratio = statistics.median(measured_times) / statistics.median(baseline_times)
    print(
        f"{title}: {measured} {statistics.median(measured_times):.1f} s vs {baseline} "
        f"{statistics.median(baseline_times):.1f} s: {ratio:.2f}x"
    )
    return ratio
