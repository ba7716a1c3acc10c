"""Tables and curves of a set of image2image runs (results/cityscapes_segmentation/).

  python -m tools.image2image_results --runs=runs/cityscapes_grid/image2image \
      --results_dir=results/cityscapes_segmentation

Reads every run folder's metrics.json and TensorBoard `eval/*` curves (with the final
`final/*` point: image2image measures both on the same validation pairs); writes
`results.csv` (one row per run), `results.md` (docs/images.md's tables: label maps, then
label map -> photo runs, beside the floors of `floors_64.json` when it is there),
`curves.png` (pixel accuracy or FCN-score against updates) and a copy of every run's
metrics.json under `runs/`. Wall time is the span of the run's TensorBoard events
(training and its periodic evaluations).

`--at_step=N` compares every run after the same number of updates: a run that went on
longer is read from its periodic evaluation at step N (same samples and inputs as the
final one), and its wall time up to that step; shorter runs keep their final metrics.
"""

import glob
import os
import shutil

from absl import app, flags

flags.DEFINE_string("runs", "runs/cityscapes_grid/image2image", "Folder of the run folders.")
flags.DEFINE_string("results_dir", "results/cityscapes_segmentation", "Where the tables go.")
flags.DEFINE_integer("at_step", 0, "Read every run at this many updates (0: each run's final metrics).",
                     lower_bound=0)
flags.DEFINE_string("floors", "", "The floors' JSON (trainers.segmentation_floors; default: "
                    "<results_dir>/floors_64.json, read when it is there).")
FLAGS = flags.FLAGS

SEGMENTATION = ("pixel_accuracy", "vote/pixel_accuracy", "mean_iou", "vote/mean_iou",
                "diversity/class_change", "diversity/mean_pairwise_l1")
PHOTOS = ("fcn/pixel_accuracy", "fcn/mean_iou", "fcn/real_pixel_accuracy", "ls_mean", "mse",
          "mean/mse", "diversity/mean_pairwise_l1")


def _events(log_dir: str):
    import tensorflow as tf

    for path in sorted(glob.glob(os.path.join(log_dir, "events*"))):
        yield from tf.compat.v1.train.summary_iterator(path)


def curves_and_wall_time(run_dir: str, last_step: int = 0) -> tuple[dict, float]:
    """({metric: [(step, value)]} of eval/<metric> and final/<metric>, seconds from the
    first to the last event), counting only events up to `last_step` when it is > 0."""
    import tensorflow as tf

    from tf_factorgan import trainer

    curves, times = {}, []
    for event in _events(trainer.log_dir(run_dir)):
        if last_step and event.step > last_step:
            continue
        times.append(event.wall_time)
        for value in event.summary.value:
            group, _, metric = value.tag.partition("/")
            if group in ("eval", "final") and value.HasField("tensor"):
                curves.setdefault(metric, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor))))
    return curves, (max(times) - min(times)) if times else 0.0


def describe(config: dict) -> str:
    """The run's model and loss, as docs/images.md's tables name them."""
    from tf_factorgan.experiments import common
    from tf_factorgan.pairs_loss import PairsLoss

    variant = common.upgraded_settings(config)["variant"]  # runs before --variant: "model"
    loss = config.get("recon_loss", "none")
    default_weight = PairsLoss().recon_weight  # other weights are named in the row
    if loss != "none" and config.get("recon_weight", default_weight) != default_weight:
        loss += f" x {config['recon_weight']:g}"
    return f"{variant}" + ("" if loss == "none" else f" + {loss}") + f" ({config['label_encoding']})"


def _format(value) -> str:
    return "" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def main(argv):
    del argv
    from tf_factorgan import files

    rows = []
    for run_dir in sorted(glob.glob(os.path.join(FLAGS.runs, "*", "metrics.json"))):
        run_dir = os.path.dirname(run_dir)
        metrics = files.read_json(os.path.join(run_dir, "metrics.json"))
        curves, seconds = curves_and_wall_time(run_dir, FLAGS.at_step)
        if FLAGS.at_step:
            metrics = at_step(metrics, curves, FLAGS.at_step, run_dir)
        rows.append({"name": os.path.basename(run_dir), "metrics": metrics, "curves": curves,
                     "minutes": seconds / 60})
    if not rows:
        raise SystemExit(f"error: no finished runs (metrics.json) under {FLAGS.runs}")
    os.makedirs(os.path.join(FLAGS.results_dir, "runs"), exist_ok=True)
    for row in rows:
        shutil.copyfile(os.path.join(FLAGS.runs, row["name"], "metrics.json"),
                        os.path.join(FLAGS.results_dir, "runs", f"{row['name']}.json"))
    label_rows = [r for r in rows if r["metrics"]["config"]["direction"] == "a_to_b"]
    photo_rows = [r for r in rows if r["metrics"]["config"]["direction"] == "b_to_a"]
    floors = read_floors()
    write_csv(rows)
    write_markdown(label_rows, photo_rows, floors)
    plot(label_rows, photo_rows, floors)
    print(f"written: {FLAGS.results_dir}/results.csv, results.md, curves.png, runs/")


def at_step(metrics: dict, curves: dict, step: int, run_dir: str) -> dict:
    """`metrics` as the periodic evaluation at `step` measured them (the final metrics
    when the run ended there or earlier: the table's updates column says which)."""
    if metrics["step"] <= step:
        return metrics
    found = {key: dict(points)[step] for key, points in curves.items() if step in dict(points)}
    if not found:
        raise SystemExit(f"error: {run_dir} has no periodic evaluation at --at_step={step}")
    return {**{k: v for k, v in metrics.items() if k not in SEGMENTATION + PHOTOS}, **found, "step": step}


def write_csv(rows: list) -> None:
    import csv

    keys = ("step", *SEGMENTATION, *PHOTOS)
    with open(os.path.join(FLAGS.results_dir, "results.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "model", "direction", "seed", "lr", *keys, "wall_minutes"])
        for row in rows:
            metrics, config = row["metrics"], row["metrics"]["config"]
            writer.writerow([row["name"], describe(config), config["direction"], config["seed"],
                             f"{config['lr']:g}", *(_format(metrics.get(k)) for k in keys),
                             f"{row['minutes']:.1f}"])


def evaluations(curves: dict, last_step: int) -> str:
    """"0.61 0.63 ...": the vote pixel accuracy of every evaluation up to `last_step`."""
    by_step = dict(curves.get("vote/pixel_accuracy", []))
    return " ".join(f"{by_step[step]:.3f}" for step in sorted(by_step) if step <= last_step)


def read_floors():
    """The floors (`trainers.segmentation_floors` JSON) of --floors, or of
    <results_dir>/floors_64.json; None when that file is not there."""
    from tf_factorgan import files

    path = FLAGS.floors or os.path.join(FLAGS.results_dir, "floors_64.json")
    return files.read_json(path) if os.path.isfile(path) else None


def write_markdown(label_rows: list, photo_rows: list, floors) -> None:
    from tf_factorgan import files

    lines = []
    header = ("| run | model | seed | lr | pixel accuracy (one sample) | pixel accuracy (vote of 10) | mean IoU "
              "(one / vote) | class change between samples | updates | wall time | vote accuracy at each "
              "evaluation |")
    lines += [header, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    if floors:
        for name, label in (("most_common_class", "floor: most common class everywhere"),
                            ("per_pixel_prior", "floor: each pixel's most common class")):
            lines.append(f"| | {label} | | | {floors[name]['pixel_accuracy']:.3f} | | "
                         f"{floors[name]['mean_iou']:.3f} | | | | |")
    for row in label_rows:
        m = row["metrics"]
        lines.append(
            f"| {row['name']} | {describe(m['config'])} | {m['config']['seed']} | {m['config']['lr']:g} | "
            f"{m['pixel_accuracy']:.3f} | {m['vote/pixel_accuracy']:.3f} | "
            f"{m['mean_iou']:.3f} / {m['vote/mean_iou']:.3f} | {m.get('diversity/class_change', 0):.3f} | "
            f"{m['step']} | {row['minutes']:.0f} min | {evaluations(row['curves'], m['step'])} |")
    if photo_rows:
        lines += ["", "| model | FCN-score pixel accuracy | FCN-score mean IoU | LS metric | MSE (one sample / "
                  "mean of 10) | mean pairwise L1 between samples | updates | wall time |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        real = photo_rows[0]["metrics"]
        lines.append(f"| real photos | {real['fcn/real_pixel_accuracy']:.3f} | {real['fcn/real_mean_iou']:.3f} | "
                     f"0.25 at best | | | | |")
        for row in photo_rows:
            m = row["metrics"]
            lines.append(
                f"| {describe(m['config'])} | {m['fcn/pixel_accuracy']:.3f} | {m['fcn/mean_iou']:.3f} | "
                f"{m['ls_mean']:.3f} | {m['mse']:.4f} / {m['mean/mse']:.4f} | "
                f"{m['diversity/mean_pairwise_l1']:.4f} | {m['step']} | {row['minutes']:.0f} min |")
    files.write_bytes(os.path.join(FLAGS.results_dir, "results.md"), ("\n".join(lines) + "\n").encode())


def plot(label_rows: list, photo_rows: list, floors) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(label_rows, "vote/pixel_accuracy", "pixel accuracy (vote of 10 samples)"),
              (photo_rows, "fcn/pixel_accuracy", "FCN-score pixel accuracy (label map -> photo)")]
    panels = [p for p in panels if p[0]]
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for axis, (rows, key, title) in zip(axes[0], panels):
        for row in rows:
            points = sorted(row["curves"].get(key, []))
            if points:
                axis.plot(*zip(*points), marker="o", markersize=3, label=row["name"])
        if key == "vote/pixel_accuracy" and floors:
            prior = floors["per_pixel_prior"]["pixel_accuracy"]
            axis.axhline(prior, color="grey", linestyle="--", label="floor: per-pixel prior")
        axis.set_title(title)
        axis.set_xlabel("generator updates")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(os.path.join(FLAGS.results_dir, "curves.png"), dpi=110)


if __name__ == "__main__":
    app.run(main)
