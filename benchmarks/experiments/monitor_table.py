"""A training run's sample monitor as a table, step by step, beside another run's.

    python benchmarks/experiments/monitor_table.py runs/shapes_64 --every 2000 \
        --beside docs/experiments/time_to_quality.json runs/shapes_32

Prints a Markdown row for every monitor record of RUN (RUN/monitor.jsonl) at a multiple of
`--every` steps, and its newest: the step, training CPU hours (all threads), the strict
faithful share with its 95% interval, the sampled futures' directions, distinct
directions per context, the temperature-1 self-consistency ratio (median own / real bits
per pixel) and the bits per pixel of the monitored real clips; with `--beside`, the
faithful share and the ratio of another run at the same step too (its whole curve as
`compare_runs.py` wrote it into a JSON file, named by the run there).
"""
import argparse
import json
import os

from videoflow_tf.training.monitor import read_records
from videoflow_tf.training.run_dir import MONITOR_FILE

DIRECTIONS = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")


def beside_curve(path, run):
    """{step: record} of run `run`'s curve in compare_runs.py's JSON file `path`."""
    with open(path, encoding="utf-8") as file:
        rows = json.load(file)["rows"]
    found = [r["curve"] for r in rows if r["run"].rstrip("/") == run.rstrip("/")]
    if not found:
        raise SystemExit(f"{path} holds no run {run!r}; it holds "
                         f"{', '.join(r['run'] for r in rows)}")
    return {record["step"]: record for record in found[0]}


def table(records, every, beside=None, beside_name=""):
    """The Markdown lines of `records` at multiples of `every` steps and the newest."""
    other = f", {beside_name}" if beside is not None else None
    lines = ["| steps | CPU h | faithful (95% interval) | "
             + (f"faithful{other} | " if other else "")
             + f"directions sampled ({' '.join(DIRECTIONS)}) | distinct per context | "
             "T=1 own / real bpp | " + (f"T=1{other} | " if other else "") + "bpp |",
             "|---:|---:|---|" + ("---:|" if other else "") + "---|---:|---:|"
             + ("---:|" if other else "") + "---:|"]
    for record in records:
        if record["step"] % every and record is not records[-1]:
            continue
        low, high = record["faithful_interval"]
        theirs = beside.get(record["step"], {}) if beside is not None else None
        cells = [f"{record['step']:,}", f"{record['cpu_seconds'] / 3600:.2f}",
                 f"{record['faithful_fraction']:.2f} ({low:.2f}-{high:.2f})"]
        if theirs is not None:
            cells.append(_number(theirs.get("faithful_fraction")))
        cells += [" ".join(str(record["direction_counts"][d]) for d in DIRECTIONS),
                  f"{record['distinct_directions']:.2f}", _number(record["t1_bpp_ratio_median"])]
        if theirs is not None:
            cells.append(_number(theirs.get("t1_bpp_ratio_median")))
        cells.append(f"{record['real_bpp']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _number(value):
    return "" if value is None else f"{value:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a training run folder with a monitor.jsonl")
    parser.add_argument("--every", type=int, default=1000, metavar="STEPS",
                        help="a row every STEPS steps, and the newest (default: 1000)")
    parser.add_argument("--beside", nargs=2, metavar=("JSON", "RUN"),
                        help="add the faithful share and T=1 ratio of RUN's curve in "
                        "JSON, a file compare_runs.py wrote, at the same steps")
    args = parser.parse_args()
    monitor = os.path.join(args.run, MONITOR_FILE)
    if not os.path.isfile(monitor):
        raise SystemExit(f"{args.run} has no {MONITOR_FILE}")
    records = [r for r in read_records(monitor) if "faithful_interval" in r]
    beside = beside_curve(*args.beside) if args.beside else None
    name = os.path.basename(args.beside[1].rstrip("/")) if args.beside else ""
    print("\n".join(table(records, args.every, beside, name)))


if __name__ == "__main__":
    main()
