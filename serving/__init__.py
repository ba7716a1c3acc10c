"""TF Serving model config, development server and clients (its own issue: #5)."""
