"""Experiments of the FactorGAN paper: configuration, training and evaluation of one run."""
