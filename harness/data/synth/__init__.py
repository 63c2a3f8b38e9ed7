"""Synthetic IQA datasets in the layouts of KADID-10k, TID2013 and KonIQ-10k, made offline."""
