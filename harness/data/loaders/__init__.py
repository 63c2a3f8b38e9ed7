"""Loaders of the benchmark datasets; importing this package registers them."""

from harness.data.loaders import csiq, kadid10k, koniq10k, live, livec, spaq, tid2013

__all__ = ["csiq", "kadid10k", "koniq10k", "live", "livec", "spaq", "tid2013"]
