"""tf_factorgan: FactorGAN (Stoller, Ewert & Dixon, ICLR 2020) in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
