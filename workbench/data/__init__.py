"""Datasets: scanning sources into a `DatasetIndex`, statistics, checks, demo, torch Datasets."""
