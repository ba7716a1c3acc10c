"""Serving exported generators through the TF Serving API: model config files
(`config`), wire formats (`wire`), a development server (`repository`, `dev_server`,
`serve`) and clients (`client`, `cli`). `serve` and `cli` are commands (`python -m
serving.serve` / `serving.cli` in a checkout; installed: `factorgan-serve`,
`factorgan-client`)."""
