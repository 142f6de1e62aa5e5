"""Synthetic face generation: face model, renderer, appearance, sampling, identity mixup, dataset writer."""
