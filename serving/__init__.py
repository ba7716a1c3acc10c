"""`python -m serving.serve` and `python -m serving.cli` of a checkout, and the TF
Serving image's `models.config`. The serving code is `tf_factorgan.serving` (installed:
`factorgan-serve`, `factorgan-client`)."""
