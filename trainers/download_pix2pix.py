"""`python -m trainers.download_pix2pix`: runs `tf_factorgan.cli.download_pix2pix` (its docstring and
--help say what it does)."""

from tf_factorgan.cli import download_pix2pix

if __name__ == "__main__":
    download_pix2pix.run()
