"""SavedModel export of trained generators for TF Serving: the signatures and the
atomic versioned publish (`savedmodel`), and the command that exports a run folder
(`export`: `python -m export.export` in a checkout, `factorgan-export` installed)."""
