"""Evaluation metrics: FID, the Paired MNIST dependency metric and their MNIST classifier."""
