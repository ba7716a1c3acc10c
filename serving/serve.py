"""`python -m serving.serve`: runs `tf_factorgan.serving.serve` (its docstring and --help
say what it does)."""

from tf_factorgan.serving import serve

if __name__ == "__main__":
    serve.run()
