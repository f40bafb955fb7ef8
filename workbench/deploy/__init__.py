"""Using a finished run: classify new images, explain a prediction, export the model.

Everything here starts from `workbench.train.trained.load_trained(run_dir)`, the one way a run's
classifier and preprocessing are rebuilt, so predict, explain and export cannot disagree about
what a run is. Nothing else in the core imports this package (it sits at the top, beside the CLI).
"""
