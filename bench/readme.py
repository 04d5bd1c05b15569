"""Write the numbers in bench/results/*.json into README.md (between the bench markers).

Each benchmark script compares against its reference in the same run and writes its JSON;
this only formats them. Usage: .venv/bin/python bench/readme.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def render_tables(d: dict, *, min_ms: bool = False) -> str:
    """The two tables of bench/render.py's results (README.md and bench/results/render.md);
    `min_ms` adds the fastest run of each command beside the median."""
    extra = (" min ms |", " ---: |") if min_ms else ("", "")
    out = ["| command | median ms |" + extra[0] + " x kubectl kustomize |", "| --- | ---: |" + extra[1] + " ---: |"]
    for k, v in d["single"].items():
        out.append(f"| `{k}` | {v['median_ms']} |" + (f" {v['min_ms']} |" if min_ms else "") + f" {v['vs_kustomize']} |")
    out += ["", "| specs in one `specc render` | cold s | cold ms/spec | warm s | warm ms/spec | cold, `-o DIR` (new folder) s "
            "| the same files written by bare Python s |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, v in d["many"].items():
        out.append(f"| {int(n):,} | {v['cold_s']} | {v['cold_ms_per_spec']} | {v['warm_s']} | {v['warm_ms_per_spec']} | "
                   f"{v.get('cold_to_dir_s', '')} | {v.get('write_floor_s', '')} |")
    return "\n".join(out)


def render_section(d: dict) -> str:
    return "\n".join(["### Rendering (`bench/render.py`)", "",
                      "Whole-process wall time, against `kubectl kustomize` of the same rendered folder in the same run.", "",
                      render_tables(d)])


def loader_section(d: dict) -> str:
    out = ["### Loading (`bench/bench_loader.py`)", "",
           f"{d['n']:,} specs loaded in one process; an alias bomb (billion laughs).", "",
           "| loader | 1,000 specs s | alias bomb |", "| --- | ---: | --- |"]
    for r in d["rows"]:
        b = r["bomb"]
        out.append(f"| {r['loader']} | {r['load_1000_s']} | {b['outcome']}, {b['seconds'] * 1000:.0f} ms, peak {b['peak_bytes'] // 1024} KiB |")
    return "\n".join(out)


def recommender_section(d: dict) -> str:
    import statistics

    runs = list(zip(d["reference"], d["ours"]))
    med = lambda f: statistics.median(f(r, o) for r, o in runs)  # noqa: E731
    ratios = ", ".join(f"{r['wall_s'] / o['wall_s']:.1f}x" for r, o in runs)
    out = ["### Recommender (`bench/recommender.py`)", "",
           f"Against `../shared/reference/ref_recommender.py` on the book's data, same seeded shuffled split, "
           f"{d['epochs']} epochs, batch size {d['batch_size']}; median of {len(runs)} alternating runs "
           f"(end-to-end wall speed-up per run: {ratios}).", "",
           "| | reference | specc | speed-up |", "| --- | ---: | ---: | ---: |",
           f"| end to end (read, preprocess, train, export), wall s | {med(lambda r, o: r['wall_s']):.1f} | {med(lambda r, o: o['wall_s']):.1f} | {med(lambda r, o: r['wall_s'] / o['wall_s']):.1f}x |",
           f"| end to end, CPU s | {med(lambda r, o: r['cpu_s']):.1f} | {med(lambda r, o: o['cpu_s']):.1f} | {med(lambda r, o: r['cpu_s'] / o['cpu_s']):.1f}x |",
           f"| training samples/s at batch {d['batch_size']} | {med(lambda r, o: r['samples_per_s']):,.0f} | {med(lambda r, o: o['samples_per_s']):,.0f} | {med(lambda r, o: o['samples_per_s'] / r['samples_per_s']):.1f}x |",
           f"| best validation MSLE | {med(lambda r, o: min(r['val_loss'])):.5f} | {med(lambda r, o: min(o['val_loss'])):.5f} | |",
           f"| validation MSLE of the training mean | {med(lambda r, o: r['val_msle_mean_predictor']):.5f} | {med(lambda r, o: o['val_msle_mean_predictor']):.5f} | |"]
    return "\n".join(out)


def recommender_quality_section(d: dict) -> str:
    out = ["### Recommender model quality (`bench/recommender_quality.py`)", "",
           f"Validation MSLE over {d['seeds']} seeds against the reference (seed 0 unmodified, other seeds a copy "
           "with only its seeds changed); per seed both validate on the same shuffled split, "
           f"{d['epochs']} epochs, batch size {d['batch_size']}.", "",
           "| seed | best, reference | best, specc | final epoch, reference | final epoch, specc | training mean |",
           "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in d["rows"]:
        ref, us = r["reference"], r["specc"]
        out.append(f"| {r['seed']} | {min(ref['val_loss']):.5f} | {min(us['val_loss']):.5f} | {ref['val_loss'][-1]:.5f} | "
                   f"{us['val_loss'][-1]:.5f} | {us['val_msle_mean_predictor']:.5f} |")
    out += ["", "| over the seeds | reference mean | specc mean | specc - reference, mean +- s.e. | specc lower / equal / higher |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for name, key in (("best validation MSLE", "best_val_msle"), ("final-epoch validation MSLE", "final_val_msle")):
        s = d[key]
        out.append(f"| {name} | {s['reference_mean']:.5f} | {s['specc_mean']:.5f} | "
                   f"{s['mean_difference']:+.6f} +- {s['standard_error']:.6f} | "
                   f"{s['specc_lower']} / {s['equal']} / {s['reference_lower']} |")
    o = d["keras_fit_epoch_order"]
    out += ["", f"Keras 3 `fit` on numpy input after `keras.utils.set_random_seed` (as the reference runs it): "
            f"shuffled {'yes' if o['shuffled'] else 'no'}, same order in every epoch "
            f"{'yes' if o['same_every_epoch'] else 'no'} (checked by the benchmark on a 32-row array)."]
    return "\n".join(out)


def recommender_keras_fit_section(d: dict) -> str:
    import statistics

    out = ["### Recommender engine: Keras `fit` with `jit_compile=True` (`bench/recommender_keras_fit.py`)", "",
           f"One run each on the book's data, same split, initial weights and epoch orders, {d['epochs']} epochs, batch "
           f"size {d['batch_size']}; the Keras variants use `steps_per_execution={d['steps_per_execution']}` and are "
           "timed without an export.", "",
           "| variant | end to end, wall s | x reference | median epoch s | best validation MSLE |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in d["runs"].items():
        out.append(f"| {name} | {r['wall_s']:.1f} | {r['wall_vs_reference']:.2f} | {statistics.median(r['epoch_s']):.2f} | "
                   f"{min(r['val_loss']):.5f} |")
    two = d["tf_keras_fit_jit_two_workers"]
    outcome = "runs" if two["runs"] else f"fails (exit codes {two['exit_codes']}): `{two['error'].split(' (')[0]}`"
    out += ["", f"tf-keras `fit` with `jit_compile=True` under MultiWorkerMirroredStrategy, 2 workers: {outcome}."]
    return "\n".join(out)


def income_section(d: dict) -> str:
    out = ["### Income (`bench/income.py`)", "",
           f"Against `../shared/reference/ref_income.py` in the same run ({d['explain_rows']} explained rows, "
           f"accuracy identical: train {d['accuracy']['train']}, test {d['accuracy']['test']}).", "",
           "| | reference | specc | ratio |", "| --- | ---: | ---: | ---: |",
           f"| forest fit, s | {d['fit_s']['reference']:.2f} | {d['fit_s']['specc']:.2f} | {d['fit_s']['ratio']:.2f} |",
           f"| Anchor explanation per row, CPU s | {d['explain_cpu_s_per_row']['reference']:.2f} | {d['explain_cpu_s_per_row']['specc']:.2f} | {d['explain_cpu_s_per_row']['ratio']:.2f} |",
           f"| Anchor explanation per row, wall s | {d['explain_wall_s_per_row']['reference']:.2f} | {d['explain_wall_s_per_row']['specc']:.2f} | {d['explain_wall_s_per_row']['ratio']:.2f} |",
           f"| whole process, s | {d['process_s']['reference']:.1f} | {d['process_s']['specc']:.1f} | {d['process_s']['specc'] / d['process_s']['reference']:.2f} |"]
    return "\n".join(out)


def mnist_section(d: dict) -> str:
    s = d["settings"]
    out = ["### Distributed MNIST (`bench/mnist.py`)", "",
           f"Book settings (learning rate {s['learning_rate']}, batch {s['batch_size_per_replica']} per replica, "
           f"{s['steps']} steps), {s['threads_per_process']} thread per process on {s['cpus']} cores; the 2-worker runs "
           "go through TF_CONFIG / the PyTorch rendezvous on loopback.", "",
           "| framework | workers | samples/s | steps to 95 % | s to 95 % | held-out accuracy |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in d["rows"]:
        out.append(f"| {r['framework']} | {r['world_size']} | {r['samples_per_s']:,.0f} | {r['step_to_target']} | "
                   f"{r['seconds_to_target']} | {r['test_accuracy']} |")
    return "\n".join(out)


def main() -> None:
    sections = {"render": render_section, "loader": loader_section, "recommender": recommender_section,
                "recommender_quality": recommender_quality_section, "recommender_keras_fit": recommender_keras_fit_section,
                "income": income_section, "mnist": mnist_section}
    parts = [section(d) for name, section in sections.items() if (d := _load(name))]
    body = "\n\n".join(p for p in parts if p)
    readme = REPO / "README.md"
    text = readme.read_text()
    if BEGIN not in text:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} markers")
    new = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: f"{BEGIN}\n{body}\n{END}", text, flags=re.S)
    readme.write_text(new)
    print(body)


if __name__ == "__main__":
    main()
