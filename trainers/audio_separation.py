"""`python -m trainers.audio_separation`: runs `tf_factorgan.cli.audio_separation` (its docstring and
--help say what it does)."""

from tf_factorgan.cli import audio_separation

if __name__ == "__main__":
    audio_separation.run()
