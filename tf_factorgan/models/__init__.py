"""Keras subclassed models: generators, discriminators and evaluation classifiers."""
