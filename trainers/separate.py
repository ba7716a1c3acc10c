"""`python -m trainers.separate`: runs `tf_factorgan.cli.separate` (its docstring and
--help say what it does)."""

from tf_factorgan.cli import separate

if __name__ == "__main__":
    separate.run()
