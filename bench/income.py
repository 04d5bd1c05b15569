"""Benchmark: the `income` trainer against the book's notebook (../shared/reference/ref_income.py).

Runs the reference script and this repo's trainer steps (runtime.adult + runtime.trainers.income)
as separate processes in the same run, on the same data, alternating which goes first, and
compares forest fit time (preprocessor transform + fit, as the reference times it), accuracy,
and Anchor explanation time per test row, checking that accuracies and every anchor,
precision and coverage are identical. Explanation time is taken by wrapping
AnchorTabular.explain in both processes (the reference script itself runs unmodified under
runpy), as wall seconds and as CPU seconds of the process: explanation is single-threaded in
both, so CPU seconds are the comparison that survives a machine shared with other work.
Prints a markdown table; writes bench/results/income.json.

Usage: python bench/income.py [--explain N] [--repeats R] [--data ADULT_DATA]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPECC_SHARED", REPO.parent / "shared")).resolve()
REFERENCE = SHARED / "reference" / "ref_income.py"
ADULT = SHARED / "data" / "adult" / "adult.data"
RESULTS = REPO / "bench" / "results" / "income.json"


def _time_explain(cls, sink: list) -> None:
    """Wrap cls.explain to append (wall s, process CPU s) of every call to sink."""
    inner = cls.explain

    def explain(self, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return inner(self, *args, **kwargs)
        finally:
            sink.append((time.perf_counter() - wall, time.process_time() - cpu))

    cls.explain = explain


def reference(data: Path, explain: int) -> None:
    """Run ref_income.py unmodified, with AnchorTabular.explain timed; print its timings last."""
    import runpy

    from alibi.explainers import AnchorTabular  # as the reference imports it

    timings: list = []
    _time_explain(AnchorTabular, timings)
    sys.argv = [str(REFERENCE), str(data), "--explain", str(explain)]
    runpy.run_path(str(REFERENCE), run_name="__main__")
    print(json.dumps({"explain_timings": timings}))


def ours(data: Path, explain: int) -> dict:
    """The trainer's own steps, timed like the reference; returns the reference's JSON shape."""
    sys.path.insert(0, str(REPO))
    from runtime.adult import parse_adult, split_book
    from runtime.trainers.income import build_pipeline, explain_rows, fit_pipeline, import_anchor_tabular, predictor_for

    adult = parse_adult(data.read_text(encoding="utf-8"), str(data))
    X_train, y_train, X_test, y_test = split_book(adult, 0, 30_000)
    pipeline = build_pipeline(adult, 50, 0, -1)
    timings = fit_pipeline(pipeline, X_train, y_train)
    predict = predictor_for(pipeline, -1, X_test)
    out = {"train_rows": len(X_train), "test_rows": len(X_test),
           "fit_s": round(timings["preprocess_s"] + timings["fit_s"], 2),
           "train_acc": round(float((predict(X_train) == y_train).mean()), 4),
           "test_acc": round(float((predict(X_test) == y_test).mean()), 4)}
    AnchorTabular, timings = import_anchor_tabular(), []
    _time_explain(AnchorTabular, timings)
    rows = explain_rows(AnchorTabular, predict, adult, X_train, X_test, list(range(explain)), 0.95, 1)
    out["explanations"] = [{"idx": r["row"], "anchor": " AND ".join(r["anchor"]), "precision": round(r["precision"], 3),
                            "coverage": round(r["coverage"], 3), "s": r["seconds"]} for r in rows]
    out["explain_timings"] = timings
    return out


def _run(cmd: list[str]) -> tuple[dict, float]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    docs = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    result = docs[0]
    for doc in docs[1:]:
        result.update(doc)
    return result, wall


def _rows(runs: list[dict], which: int) -> list[float]:
    """Per explained row, the median over runs of wall (which=0) or CPU (which=1) seconds."""
    n = len(runs[0]["explain_timings"])
    return [round(statistics.median(r["explain_timings"][i][which] for r in runs), 3) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--explain", type=int, default=7, help="explain test rows 0..N-1 (default 7: the book's 0..6)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--data", type=Path, default=ADULT)
    ap.add_argument("--side", choices=["reference", "ours"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side == "ours":
        print(json.dumps(ours(a.data, a.explain)))
        return
    if a.side == "reference":
        reference(a.data, a.explain)
        return

    me = [sys.executable, str(Path(__file__).resolve()), "--explain", str(a.explain), "--data", str(a.data), "--side"]
    ref_cmd, our_cmd = [*me, "reference"], [*me, "ours"]
    refs, mine, load = [], [], [os.getloadavg()[0]]
    for i in range(a.repeats):
        order = [(ref_cmd, refs), (our_cmd, mine)]
        for cmd, sink in order if i % 2 == 0 else order[::-1]:
            result, wall = _run(cmd)
            result["process_s"] = round(wall, 2)
            result["explain_timings"] = [[round(w, 3), round(c, 3)] for w, c in result["explain_timings"]]
            sink.append(result)
            load.append(os.getloadavg()[0])

    same_acc = all((r["train_acc"], r["test_acc"]) == (m["train_acc"], m["test_acc"]) for r, m in zip(refs, mine))
    key = lambda e: (e["idx"], e["anchor"], e["precision"], e["coverage"])  # noqa: E731
    same_expl = all([key(e) for e in r["explanations"]] == [key(e) for e in m["explanations"]] for r, m in zip(refs, mine))
    ref_fit, our_fit = statistics.median(r["fit_s"] for r in refs), statistics.median(m["fit_s"] for m in mine)
    ref_rows, our_rows = _rows(refs, 0), _rows(mine, 0)
    ref_row, our_row = statistics.mean(ref_rows), statistics.mean(our_rows)
    ref_cpu_rows, our_cpu_rows = _rows(refs, 1), _rows(mine, 1)
    ref_cpu, our_cpu = statistics.mean(ref_cpu_rows), statistics.mean(our_cpu_rows)
    ref_proc, our_proc = statistics.median(r["process_s"] for r in refs), statistics.median(m["process_s"] for m in mine)

    lines = [
        f"income: reference notebook vs specc, {a.repeats} run(s) each, {os.cpu_count()} CPUs, "
        f"load average {min(load):.1f}-{max(load):.1f} (shared machine)",
        "",
        "| measure | reference | specc | specc / reference |",
        "| --- | ---: | ---: | ---: |",
        f"| forest fit, 50 trees (s) | {ref_fit:.2f} | {our_fit:.2f} | {our_fit / ref_fit:.2f} |",
        f"| train accuracy | {refs[0]['train_acc']:.4f} | {mine[0]['train_acc']:.4f} | {'identical' if same_acc else 'DIFFERENT'} |",
        f"| test accuracy | {refs[0]['test_acc']:.4f} | {mine[0]['test_acc']:.4f} | {'identical' if same_acc else 'DIFFERENT'} |",
        f"| Anchor explanation, mean per row, CPU s (rows 0..{a.explain - 1}) | {ref_cpu:.2f} | {our_cpu:.2f} | {our_cpu / ref_cpu:.2f} |",
        f"| Anchor explanation, mean per row, wall s | {ref_row:.2f} | {our_row:.2f} | {our_row / ref_row:.2f} |",
    ]
    for i, (r, m) in enumerate(zip(ref_cpu_rows, our_cpu_rows)):
        lines.append(f"| row {i}, CPU s | {r:.2f} | {m:.2f} | {m / r:.2f} |")
    lines += [
        f"| anchors, precision, coverage | | | {'identical' if same_expl else 'DIFFERENT'} |",
        f"| whole process incl. imports (s) | {ref_proc:.2f} | {our_proc:.2f} | {our_proc / ref_proc:.2f} |",
    ]
    print("\n".join(lines))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "income", "cpus": os.cpu_count(), "repeats": a.repeats, "explain_rows": a.explain,
        "load_average": [round(x, 2) for x in load],
        "fit_s": {"reference": ref_fit, "specc": our_fit, "ratio": round(our_fit / ref_fit, 3)},
        "explain_cpu_s_per_row": {"reference": round(ref_cpu, 3), "specc": round(our_cpu, 3),
                                  "ratio": round(our_cpu / ref_cpu, 3), "rows_reference": ref_cpu_rows, "rows_specc": our_cpu_rows},
        "explain_wall_s_per_row": {"reference": round(ref_row, 3), "specc": round(our_row, 3),
                                   "ratio": round(our_row / ref_row, 3), "rows_reference": ref_rows, "rows_specc": our_rows},
        "process_s": {"reference": ref_proc, "specc": our_proc},
        "accuracy": {"train": mine[0]["train_acc"], "test": mine[0]["test_acc"], "identical": same_acc},
        "explanations_identical": same_expl,
        "runs": {"reference": refs, "specc": mine},
    }, indent=2) + "\n", encoding="utf-8")
    if not (same_acc and same_expl):
        raise SystemExit("results differ from the reference")


if __name__ == "__main__":
    main()
