"""`python -m trainers.paper_grid`: runs `tf_factorgan.cli.paper_grid` (its docstring and
--help say what it does)."""

from tf_factorgan.cli import paper_grid

if __name__ == "__main__":
    paper_grid.run()
