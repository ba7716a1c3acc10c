"""`python -m trainers.<name>`: the trainers of a checkout, each running its
`tf_factorgan.cli` module (installed: `factorgan-train <name>`, `pyproject.toml`)."""

# Before anything heavy: TensorFlow's INFO lines off, Ctrl-C while importing ends in
# one line (`tf_factorgan.cli`).
import tf_factorgan.cli  # noqa: F401
