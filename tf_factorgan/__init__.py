"""tf_factorgan: FactorGAN (Stoller, Ewert & Dixon, ICLR 2020) in TensorFlow 2 / Keras 3.

Keep this module light: every command (the development server among them) and the
package's installer import it first.
"""

# The one version number (pyproject.toml reads it; CHANGELOG.md says what changed).
__version__ = "0.2.0"
