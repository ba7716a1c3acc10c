"""`python -m export.export`: runs `tf_factorgan.export.export` (its docstring and --help
say what it does)."""

from tf_factorgan.export import export

if __name__ == "__main__":
    export.run()
