"""Timing and the results table: interleaved repeats, medians, targets with their status and cause."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

@dataclass
class Stat:
    times: list[float]  # seconds

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def row(self) -> dict:
        return {"median_ms": round(self.median * 1e3, 3), "min_ms": round(min(self.times) * 1e3, 3),
                "max_ms": round(max(self.times) * 1e3, 3), "repeats": len(self.times)}


def measure(fns: dict, repeats: int, warmup: int = 1) -> dict[str, Stat]:
    """Time each function `repeats` times, interleaved (a, b, c, a, b, c, ...) after `warmup` rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: Stat(v) for k, v in times.items()}


def profile_top(fn, n: int = 4) -> str:
    """The functions with the most self time while fn runs (pyinstrument, else cProfile)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None
    if Profiler is None:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.runcall(fn)
        st = pstats.Stats(prof)
        total = sum(v[2] for v in st.stats.values()) or 1.0
        top = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:n]
        return ", ".join(f"{k[2]} {100 * v[2] / total:.0f}%" for k, v in top)
    prof = Profiler(interval=0.001)
    prof.start()
    try:
        fn()
    finally:
        prof.stop()
    root = prof.last_session.root_frame()
    self_time: dict[str, float] = {}

    def walk(frame):  # time in synthetic children ([self], [await]) is the frame's own (C calls included)
        own = frame.time - sum(ch.time for ch in frame.children if not ch.is_synthetic)
        key = f"{frame.function.rsplit('.', 1)[-1][:30]} ({Path(frame.file_path_short or '?').name}:{frame.line_no})"
        self_time[key] = self_time.get(key, 0.0) + max(own, 0.0)
        for ch in frame.children:
            if not ch.is_synthetic:
                walk(ch)

    if root is None:
        return "nothing sampled"
    walk(root)
    total = root.time or 1.0
    top = sorted(self_time.items(), key=lambda kv: -kv[1])[:n]
    return "profile self time: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in top)


# ---------------------------------------------------------------------------------------------- report
@dataclass
class Report:
    rows: list[dict] = field(default_factory=list)
    targets: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def row(self, section: str, name: str, stat: Stat | None = None, note: str = "", **values) -> None:
        r = {"section": section, "name": name, "note": note}
        if stat is not None:
            r.update(stat.row())
        r.update(values)
        self.rows.append(r)
        print(f"  [{section}] {name}: " + (f"{stat.median * 1e3:.1f} ms " if stat else "") + note, flush=True)

    def row_list(self, section: str, rows: list[tuple]) -> None:
        for name, stat, note in rows:
            self.row(section, name, stat, note)

    def target(self, name: str, value: float | None, limit: float, op: str, unit: str = "", cause: str = "",
               profile=None) -> None:
        if value is None:
            self.targets.append({"target": name, "value": None, "limit": limit, "op": op, "status": "skipped",
                                 "cause": cause})
            return
        met = value <= limit if op == "<=" else value >= limit
        if met:
            status = "met"
        elif op == "<=":
            status = f"missed by {value / limit:.2f}x" if limit else f"missed (+{value:.3g})"
        else:
            status = f"missed by {limit / value:.2f}x" if value else "missed"
        if not met and profile is not None:
            try:
                cause = (cause + "; " if cause else "") + profile_top(profile)
            except Exception as exc:  # a profile must not stop the benchmark
                cause += f" (profiling failed: {exc})"
        self.targets.append({"target": name, "value": round(float(value), 4), "limit": limit, "op": op,
                             "unit": unit, "status": status, "cause": "" if met else cause})

    def table(self) -> str:
        lines = [f"{'section':<10} {'measurement':<52} {'median':>10} {'spread (min-max)':>19}  note",
                 "-" * 130]
        for r in self.rows:
            if "median_ms" in r:
                med = _fmt_ms(r["median_ms"])
                spread = f"{_fmt_ms(r['min_ms'])}-{_fmt_ms(r['max_ms'])}"
            else:
                med, spread = "", ""
            lines.append(f"{r['section']:<10} {r['name']:<52} {med:>10} {spread:>19}  {r['note']}")
        lines += ["", f"{'target':<62} {'value':>9} {'limit':>9}  status", "-" * 130]
        for t in self.targets:
            val = "-" if t["value"] is None else f"{t['value']:.3g}{t.get('unit', '')}"
            lim = f"{t['op']} {t['limit']:g}{t.get('unit', '')}"
            lines.append(f"{t['target']:<62} {val:>9} {lim:>9}  {t['status']}")
            if t.get("cause"):
                lines.append(f"{'':<64}cause: {t['cause']}")
        return "\n".join(lines)


def _fmt_ms(ms: float) -> str:
    return f"{ms / 1e3:.2f} s" if ms >= 1000 else f"{ms:.1f} ms" if ms >= 1 else f"{ms * 1e3:.0f} us"
