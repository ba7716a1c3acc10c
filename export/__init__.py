"""`python -m export.export` of a checkout. The export code is `tf_factorgan.export`
(installed: `factorgan-export`)."""
