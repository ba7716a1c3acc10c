"""Draws the README's diagram of FactorGAN's discriminators, docs/img/factorgan.svg:

    .venv/bin/python tools/method_diagram.py
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "img",
                   "factorgan.svg")
REAL, FAKE, DISC, SUM = "#dcebf7", "#fbe3d6", "#e8e8e8", "#e2f0d9"

# (discriminator, what it is, real input, fake input, sign in the combined logit)
ROWS = [
    ("$D_1$", "marginal, part 1", "part 1 of every observation\n(paired or alone)",
     "part 1 of\ngenerated samples", "+"),
    ("$D_2$", "marginal, part 2", "part 2 of every observation\n(paired or alone)",
     "part 2 of\ngenerated samples", "+"),
    ("$D_P$", "p-dependency", "real paired samples\n$(x_1, x_2)$",
     "real paired samples, parts\nshuffled across the batch", "+"),
    ("$D_Q$", "q-dependency", "generated samples\n$(\\hat x_1, \\hat x_2)$",
     "generated samples, parts\nshuffled across the batch", "\u2212"),
]


def box(axis, x, y, w, h, text, colour, size=9, weight="normal"):
    axis.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                  facecolor=colour, edgecolor="#555555", linewidth=0.8))
    axis.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size,
              weight=weight)


def main() -> None:
    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["svg.hashsalt"] = "factorgan"
    fig, axis = plt.subplots(figsize=(10, 4.6))
    axis.set_xlim(0, 10.3)
    axis.set_ylim(0, 4.6)
    axis.axis("off")
    axis.text(1.3, 4.3, "real (target 1)", ha="center", fontsize=10, weight="bold")
    axis.text(4.1, 4.3, "fake (target 0)", ha="center", fontsize=10, weight="bold")
    axis.text(6.25, 4.3, "discriminator", ha="center", fontsize=10, weight="bold")
    height, gap = 0.78, 0.2
    tops = [4.0 - i * (height + gap) for i in range(len(ROWS))]
    for top, (name, kind, real, fake, sign) in zip(tops, ROWS):
        y = top - height
        box(axis, 0.1, y, 2.4, height, real, REAL, size=8.5)
        axis.text(2.73, y + height / 2, "vs", ha="center", va="center", fontsize=8)
        box(axis, 2.95, y, 2.3, height, fake, FAKE, size=8.5)
        box(axis, 5.5, y, 1.5, height, f"{name}\n{kind}", DISC, size=8.5)
        axis.annotate("", xy=(7.75, 2.05), xytext=(7.05, y + height / 2),
                      arrowprops={"arrowstyle": "->", "color": "#555555", "linewidth": 0.9})
        axis.text(7.35, (y + height / 2 + 2.05) / 2 + 0.08, sign, fontsize=13, weight="bold",
                  ha="center", va="center", color="#b00000" if sign != "+" else "#006000")
    box(axis, 7.8, 1.25, 2.4, 1.6,
        "combined logit\n$D_1(x_1) + D_2(x_2)$\n$+ D_P(x) - D_Q(x)$\n\nthe generator's\n"
        "adversarial loss uses it", SUM, size=9)
    axis.text(5.1, 0.12, "Each discriminator is trained on its own pair of inputs; the "
              "generator is trained against their combination.", ha="center", fontsize=8.5,
              style="italic")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    fig.savefig(OUT, format="svg", bbox_inches="tight", metadata={"Date": None})
    if os.environ.get("PREVIEW"):
        fig.savefig(os.environ["PREVIEW"], dpi=80, bbox_inches="tight")
    plt.close(fig)
    print("wrote", os.path.relpath(OUT))


if __name__ == "__main__":
    main()
