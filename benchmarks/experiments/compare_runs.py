"""Compares training runs at equal compute, from their sample monitors (RUN/monitor.jsonl).

    python benchmarks/experiments/compare_runs.py runs/a runs/b ... --cpu-seconds 3600 \
        --out docs/experiments/motion_at_equal_compute.json --plot curves.png

For each run, takes the last monitor record made within `--cpu-seconds` of training CPU
time (all threads) and prints one table row: the run's config changes from its named
config, the step, the CPU time used, the strict motion metrics of its samples (the
faithful share, the directions' chi-square p-value against uniform, distinct directions
per context), self-consistency at temperature 1 (the median ratio of its own futures'
bits per pixel to the real clips', the share above 2x), its bits per pixel on the
monitored real clips, and the looser pixel-only motion numbers (steady, colour kept) that
runs monitored before the strict ones have. Also writes the rows, and every run's whole
curve, as JSON, and the curves against CPU hours as a PNG.
"""
import argparse
import json
import math
import os

from videoflow_tf import get_config
from videoflow_tf.config import current_name
from videoflow_tf.analysis import visualize
from videoflow_tf.training.monitor import read_records
from videoflow_tf.training.run_dir import MONITOR_FILE, read_config

COLUMNS = [("steps", "step", "{:d}"), ("CPU h", "cpu_hours", "{:.2f}"),
           ("faithful", "faithful_fraction", "{:.2f}"),
           ("directions p", "chi_square_p_value", "{:.2g}"),
           ("distinct / context", "distinct_directions", "{:.2f}"),
           ("T=1 own / real bpp", "t1_bpp_ratio_median", "{:.3g}"),
           ("T=1 above 2x", "t1_bpp_ratio_above_2x", "{:.2f}"),
           ("bpp", "real_bpp", "{:.3f}"),
           ("steady", "consistent_fraction", "{:.2f}"),
           ("colour kept", "colour_kept_fraction", "{:.2f}")]


def changes_from_named_config(run):
    config = read_config(run)
    name = current_name(config.name)
    base = get_config(name)
    changed = {k: v for k, v in config.to_dict().items()
               if k != "name" and base.to_dict()[k] != v}
    return name + "".join(f" {k}={v}" for k, v in sorted(changed.items()))


def row(run, cpu_seconds):
    records = read_records(os.path.join(run, MONITOR_FILE))
    within = [r for r in records if r.get("cpu_seconds", 0) <= cpu_seconds] or records[:1]
    last = within[-1]
    return {"run": run, "variant": changes_from_named_config(run), **last,
            "cpu_hours": last["cpu_seconds"] / 3600, "curve": records}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="training run folders")
    parser.add_argument("--cpu-seconds", type=float, required=True,
                        help="compare every run at this much training CPU time")
    parser.add_argument("--out", help="JSON file for the rows and curves")
    parser.add_argument("--plot", help="PNG file of the curves against CPU hours")
    args = parser.parse_args()
    monitored = [run for run in args.runs if os.path.isfile(os.path.join(run, MONITOR_FILE))]
    for run in sorted(set(args.runs) - set(monitored)):
        print(f"{run}: no {MONITOR_FILE} yet, left out")
    rows = [row(run, args.cpu_seconds) for run in monitored]
    header = ["run", "variant"] + [name for name, _, _ in COLUMNS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        cells = [os.path.basename(r["run"].rstrip("/")), r["variant"]] + [
            fmt.format(r[key]) if r.get(key) is not None else "" for _, key, fmt in COLUMNS]
        print("| " + " | ".join(cells) + " |")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump({"cpu_seconds": args.cpu_seconds, "rows": rows}, file, indent=1)


    if args.plot:
        plot_curves(args.plot, rows)


# (monitor key, panel title, log scale): the bits-per-pixel numbers span orders of
# magnitude (an early spike; samples that leave the data), so they are drawn as log10.
PLOTTED = [("faithful_fraction", "faithful futures (strict)", False),
           ("distinct_directions", "distinct directions per context", False),
           ("t1_bpp_ratio_median", "T = 1: own / real bits per pixel, median (log10)", True),
           ("real_bpp", "bits per pixel (log10)", True),
           ("consistent_fraction", "steady motion (pixels only)", False)]


def plot_curves(path, rows):
    panels = []
    for key, title, log in PLOTTED:
        series = {}
        for r in rows:
            points = [(c["cpu_seconds"] / 3600, math.log10(c[key]) if log else c[key])
                      for c in r["curve"] if c.get(key) is not None and math.isfinite(c[key])
                      and (c[key] > 0 or not log)]
            series[os.path.basename(r["run"].rstrip("/"))] = (
                [x for x, _ in points], [y for _, y in points])
        panels.append({"title": title, "xlabel": "training CPU hours",
                       "ylabel": f"log10 {key}" if log else key,
                       "series": {label: xy for label, xy in series.items() if xy[0]}})
    visualize.line_plots(path, panels)


if __name__ == "__main__":
    main()
