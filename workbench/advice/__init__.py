"""The rule-of-thumb matrix: where a dataset sits (size x similarity to ImageNet), measured.

`matrix` holds the cells and their strategies, `similarity` the BatchNorm-statistics divergence,
`transferability` NCE / LEEP, `probe` the k-fold linear probe, `advisor` the whole measurement.
"""
