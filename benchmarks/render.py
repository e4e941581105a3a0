"""The Markdown table and the chart of a benchmark run, rendered from its JSON alone.

Rerun on a saved file with ``python -m benchmarks render benchmarks/results/warm.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ducto_olap.questions import QUESTIONS

ENGINE_LABELS = {
    "postgres": "Postgres",
    "postgres_tuned": "Postgres + covering index",
    "duckdb": "DuckDB",
    "polars": "Polars",
}
ENGINE_COLORS = {
    "postgres": "#336791",
    "postgres_tuned": "#7a9cc6",
    "duckdb": "#e0a100",
    "polars": "#0075ff",
}
_TUNED = "postgres_tuned"

#: How many times faster than Postgres each engine must be (issue 4), and the
#: share of the bare COPY rate the export must reach (issue 3).
SPEEDUP_TARGETS = {"duckdb": 30, "polars": 15}
EXPORT_TARGET = 0.75

# measure_export's keys, by what they mean, most likely name first.
_EXPORT_KEYS = {
    "export": ("export_rows_per_second", "rows_per_second", "end_to_end_rows_per_second"),
    "copy": ("copy_rows_per_second", "bare_copy_rows_per_second"),
    "rss": ("peak_rss_mb", "peak_rss_megabytes"),
    "incremental": ("incremental_seconds", "incremental_10000_seconds"),
}


def write_outputs(payload: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``<mode>.md`` and ``<mode>.png`` into ``out``; return their paths."""
    mode = payload["mode"]
    table = out / f"{mode}.md"
    chart = out / f"{mode}.png"
    table.write_text(markdown(payload, chart_name=chart.name), encoding="utf-8")
    draw_chart(payload, chart)
    return table, chart


def render_file(json_path: Path) -> tuple[Path, Path]:
    """Render the table and the chart next to a saved JSON file."""
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    return write_outputs(payload, json_path.parent)


def markdown(payload: dict[str, Any], *, chart_name: str | None = None) -> str:
    """The results as Markdown: the machine, one table per size, the export numbers."""
    lines = [f"## ducto_olap benchmark, {payload['mode']} ({payload['created_at']})", ""]
    lines += _machine_lines(payload)
    engines = payload["config"]["engines"]
    for size in payload["sizes"]:
        lines += _size_table(size, engines, payload)
    lines += _export_table(payload["sizes"])
    if chart_name:
        lines += [f"![median time per question, log scale]({chart_name})", ""]
    verdict = "identical to Postgres's" if payload["ok"] else "NOT all identical (run failed)"
    lines += [f"Every engine's answers: {verdict}.", ""]
    return "\n".join(lines)


def draw_chart(payload: dict[str, Any], path: Path) -> None:
    """Grouped bars of the median per question and engine, min-max whiskers, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = payload["sizes"]
    engines = list(payload["config"]["engines"])
    if sizes and _TUNED in sizes[0]["questions"][QUESTIONS[0]]:
        engines.insert(1, _TUNED)
    figure, axes = plt.subplots(
        1, max(1, len(sizes)), figsize=(6.5 * max(1, len(sizes)), 4.8), squeeze=False
    )
    width = 0.8 / len(engines)

    for axis, size in zip(axes[0], sizes, strict=False):
        for offset, engine in enumerate(engines):
            cells = [size["questions"][question][engine] for question in QUESTIONS]
            medians = [cell["median"] * 1000 for cell in cells]
            low = [(cell["median"] - cell["min"]) * 1000 for cell in cells]
            high = [(cell["max"] - cell["median"]) * 1000 for cell in cells]
            positions = [index + (offset - (len(engines) - 1) / 2) * width for index in range(5)]
            axis.bar(positions, medians, width, yerr=[low, high], capsize=2,
                     label=ENGINE_LABELS.get(engine, engine),
                     color=ENGINE_COLORS.get(engine))  # fmt: skip
        axis.set_yscale("log")
        axis.set_xticks(range(len(QUESTIONS)))
        axis.set_xticklabels([question.replace("_", "\n") for question in QUESTIONS], fontsize=8)
        axis.set_ylabel("median ms (log scale; whiskers min-max)")
        axis.set_title(f"{size['rows']:,} rows, 30-day window, {payload['mode']}")
        axis.grid(axis="y", which="both", alpha=0.3)
        axis.legend(fontsize=8)

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _machine_lines(payload: dict[str, Any]) -> list[str]:
    host = payload["machine"]
    versions = host["versions"]
    config = payload["config"]
    pg = payload["sizes"][0]["postgres"]["settings"] if payload["sizes"] else {}
    return [
        f"- Machine: {host['cpu']}, {host['logical_cores']} logical cores, "
        f"{host['memory_gb']} GB RAM, {host['os']} (shared with other work: numbers are noisy)",
        f"- Versions: Python {versions['python']}, {host['postgres'].split(',')[0]}, "
        f"DuckDB {versions['duckdb']}, Polars {versions['polars']}, PyArrow {versions['pyarrow']}",
        f"- Postgres settings: shared_buffers {pg.get('shared_buffers')}, work_mem "
        f"{pg.get('work_mem')}, max_parallel_workers_per_gather "
        f"{pg.get('max_parallel_workers_per_gather')}, jit {pg.get('jit')}; the baseline has a "
        f"B-tree on created_at, then a partial covering index on spend rows is added and "
        f"Postgres timed again; VACUUM ANALYZE before each",
        f"- Data: {config['users']:,} users (Zipf-like), {config['days']} days, seed "
        f"{config['seed']}; window {config['window']['start']} to {config['window']['end']}",
        f"- Timing: {_mode_text(payload)}",
        "",
    ]


def _mode_text(payload: dict[str, Any]) -> str:
    repeat = payload["config"]["repeat"]
    if payload["mode"] == "cold":
        return (
            f"cold: each of {repeat} runs in a fresh process (source opened inside the timing, "
            f"imports excluded; OS page cache as it was); median, min-max"
        )
    return f"warm: one untimed warm-up, then {repeat} timed runs in one process; median, min-max"


def _size_table(size: dict[str, Any], engines: list[str], payload: dict[str, Any]) -> list[str]:
    others = [engine for engine in engines if engine != "postgres"]
    tuned = any(_TUNED in cells for cells in size["questions"].values())
    header = ["question", "Postgres (created_at index)"]
    if tuned:
        header.append(ENGINE_LABELS[_TUNED])
    for engine in others:
        label = ENGINE_LABELS.get(engine, engine)
        header += [label, f"{label}/Postgres (target)"]
        if tuned:
            header.append(f"{label} vs covering index")
    header.append("answers")

    lines = [
        f"### {size['rows']:,} rows ({payload['mode']})",
        "",
        "| " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * (len(header) - 2) + " --- |",
    ]
    for question in QUESTIONS:
        cells = size["questions"][question]
        row = [f"`{question}`", _time_cell(cells["postgres"])]
        if tuned:
            row.append(_time_cell(cells[_TUNED]))
        for engine in others:
            row += [_time_cell(cells[engine]), _ratio_cell(engine, cells[engine])]
            if tuned:
                row.append(_speedup(cells[engine].get("ratio_to_tuned_postgres")))
        same = all(cells[engine]["matches_postgres"] for engine in cells)
        row.append("identical" if same else "**MISMATCH**")
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def _time_cell(cell: dict[str, Any]) -> str:
    return f"{_ms(cell['median'])} ({_ms(cell['min'])}–{_ms(cell['max'])})"


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1000
    if milliseconds >= 100:
        return f"{milliseconds:,.0f} ms"
    if milliseconds >= 10:
        return f"{milliseconds:.1f} ms"
    return f"{milliseconds:.2f} ms"


def _ratio_cell(engine: str, cell: dict[str, Any]) -> str:
    ratio = cell.get("ratio_to_postgres")
    if not ratio:
        return "n/a"
    target = SPEEDUP_TARGETS.get(engine)
    verdict = ""
    if target is not None:
        verdict = f" (1/{target}: {'met' if ratio <= 1 / target else '**missed**'})"
    speed = f"{1 / ratio:.1f}× faster" if ratio < 1 else f"{ratio:.1f}× slower"
    return f"{ratio:.3f} = {speed}{verdict}"


def _speedup(ratio: float | None) -> str:
    if not ratio:
        return "n/a"
    return f"{1 / ratio:.1f}× faster" if ratio < 1 else f"{ratio:.1f}× slower"


def _export_table(sizes: list[dict[str, Any]]) -> list[str]:
    lines = [
        "### Export",
        "",
        "| rows | export rows/s | bare COPY rows/s | export/COPY (target ≥ 0.75) "
        "| peak RSS | incremental 10,000 rows |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in sizes:
        export = size["export"]
        rate = _pick(export, "export")
        copy = _pick(export, "copy")
        share = "n/a"
        if isinstance(rate, int | float) and isinstance(copy, int | float) and copy:
            verdict = "met" if rate / copy >= EXPORT_TARGET else "**missed**"
            share = f"{rate / copy:.2f} ({verdict})"
        rss = _pick(export, "rss")
        incremental = _pick(export, "incremental")
        lines.append(
            f"| {size['rows']:,} | {_number(rate)} | {_number(copy)} | {share} "
            f"| {_number(rss, ' MB')} | {_number(incremental, ' s')} |"
        )
    return [*lines, ""]


def _pick(export: dict[str, Any], meaning: str) -> Any:
    for key in _EXPORT_KEYS[meaning]:
        if key in export:
            return export[key]
    return None


def _number(value: Any, unit: str = "") -> str:
    if not isinstance(value, int | float):
        return "n/a"
    if isinstance(value, float) and value < 100:
        return f"{value:.2f}{unit}"
    return f"{value:,.0f}{unit}"
