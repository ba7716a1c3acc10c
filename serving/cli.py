"""`python -m serving.cli`: runs `tf_factorgan.serving.cli` (its docstring and --help say
what it does)."""

from tf_factorgan.serving import cli

if __name__ == "__main__":
    cli.run()
