"""The table of the precision check (results/precision/run_check.sh): each run in
float32 beside the same run in bfloat16.

  python -m tools.precision_results --runs=runs/precision_check --out=results/precision

Reads `<runs>/image2image/segmentation_<precision>/metrics.json` and
`<runs>/paired_mnist/<variant>_<precision>_seed<N>/metrics.json`, writes
`<out>/results.md` (one row per run pair, the Paired MNIST means over seeds) and
`<out>/results.json` (these figures of each run). Speed is the benchmarks' business
(the runs shared the machine unevenly). Runs not finished yet are
left out and listed.
"""

import glob
import json
import os
import re
import statistics

from absl import app, flags

flags.DEFINE_string("runs", "runs/precision_check", "OUT of run_check.sh.")
flags.DEFINE_string("out", "results/precision", "Where results.md and results.json go.")
FLAGS = flags.FLAGS

PRECISIONS = ("float32", "bfloat16")
SEGMENTATION = (("pixel_accuracy", "pixel accuracy"), ("vote/pixel_accuracy", "pixel accuracy, vote of 10"),
                ("mean_iou", "mean IoU"), ("diversity/class_change", "class change"))
PAIRED_MNIST = (("fid_upper", "FID upper"), ("fid_lower", "FID lower"),
                ("dependency_distance", "d_dep"), ("paper_fid_upper", "paper-recipe FID upper"))


def _metrics(path: str):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _runs(runs: str) -> dict:
    """{(experiment, name without precision, precision): metrics} of the finished runs."""
    found = {}
    for path in sorted(glob.glob(os.path.join(runs, "*", "*", "metrics.json"))):
        experiment, folder = path.split(os.sep)[-3:-1]
        match = re.fullmatch(r"(.*?)_?(float32|bfloat16)(_seed\d+)?", folder)
        if match:
            name = match.group(1) + (match.group(3) or "")
            found[experiment, name, match.group(2)] = _metrics(path)
    return found


def _pairs(found: dict) -> list[tuple[str, str, dict, dict]]:
    names = sorted({(e, n) for e, n, _ in found})
    return [(e, n, found[e, n, "float32"], found[e, n, "bfloat16"]) for e, n in names
            if (e, n, "float32") in found and (e, n, "bfloat16") in found]


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(pairs) -> str:
    lines = []
    segmentation = [p for p in pairs if p[0] == "image2image"]
    if segmentation:
        lines += ["Cityscapes segmentation (25 pairs, 64x64, 1 000 updates, seed 1337, "
                  "trainers/flagfiles/segmentation.cfg as of 2026-12-06: FactorGAN, lr 1e-4):", "",
                  _row(["metric", "float32", "bfloat16", "bfloat16 - float32"]),
                  _row(["---"] * 4)]
        for _, _, f32, b16 in segmentation:
            for key, label in SEGMENTATION:
                lines.append(_row([label, f"{f32[key]:.4f}", f"{b16[key]:.4f}",
                                   f"{b16[key] - f32[key]:+.4f}"]))
        lines.append("")
    mnist = [p for p in pairs if p[0] == "paired_mnist"]
    for variant in sorted({re.sub(r"_seed\d+$", "", n) for _, n, _, _ in mnist}):
        rows = [p for p in mnist if re.sub(r"_seed\d+$", "", p[1]) == variant]
        seeds = [re.search(r"seed(\d+)", n).group(1) for _, n, _, _ in rows]
        lines += [f"Paired MNIST {variant} (100 pairs, 20 000 updates), seeds {', '.join(seeds)}: "
                  "each seed float32 / bfloat16, then the means", "",
                  _row(["metric", *[f"seed {s}" for s in seeds], "mean float32", "mean bfloat16",
                        "mean difference"]),
                  _row(["---"] * (len(seeds) + 4))]
        for key, label in PAIRED_MNIST:
            f32 = [r[2][key] for r in rows]
            b16 = [r[3][key] for r in rows]
            digits = 3 if key == "dependency_distance" else 1
            cells = [f"{a:.{digits}f} / {b:.{digits}f}" for a, b in zip(f32, b16)]
            mean_f, mean_b = statistics.mean(f32), statistics.mean(b16)
            lines.append(_row([label, *cells, f"{mean_f:.{digits}f}", f"{mean_b:.{digits}f}",
                               f"{mean_b - mean_f:+.{digits}f}"]))
        lines.append("")
    return "\n".join(lines)


def main(argv):
    del argv
    found = _runs(FLAGS.runs)
    pairs = _pairs(found)
    unpaired = sorted(f"{e}/{n} {p}" for e, n, p in found
                      if (e, n) not in {(a, b) for a, b, _, _ in pairs})
    os.makedirs(FLAGS.out, exist_ok=True)
    text = ("The same runs in float32 and bfloat16 (`--precision`), same seeds and budget. "
            f"Made by\n\n    OUT={FLAGS.runs} SEEDS=\"1 2\" results/precision/run_check.sh\n"
            f"    python -m tools.precision_results --runs={FLAGS.runs} --out={FLAGS.out}\n\n"
            "FID on the tuned classifier unless it says paper-recipe (the paper's classifier "
            "recipe, mean of 3); d_dep: dependency distance, lower is better.\n\n" + table(pairs))
    if unpaired:
        text += "\nNot finished in both precisions yet: " + ", ".join(unpaired) + "\n"
    with open(os.path.join(FLAGS.out, "results.md"), "w") as f:
        f.write(text)
    keys = [k for k, _ in SEGMENTATION + PAIRED_MNIST] + ["last_logged_steps_per_second", "step",
                                                          "compute_precision"]
    with open(os.path.join(FLAGS.out, "results.json"), "w") as f:
        json.dump({f"{e}/{n}": {p: {k: m[k] for k in keys if k in m} for p, m in
                                (("float32", f32), ("bfloat16", b16))}
                   for e, n, f32, b16 in pairs}, f, indent=1)
    print(text)


if __name__ == "__main__":
    app.run(main)
