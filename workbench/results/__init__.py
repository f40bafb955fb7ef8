"""Results of a finished run: evaluation, calibration, post-hoc logit adjustment, comparison."""
