"""Datasets: scanning sources into a `DatasetIndex`, statistics, checks, the demo, torch Datasets."""
