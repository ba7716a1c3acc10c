"""SavedModel export of trained generators for TF Serving (its own issue: #5)."""
