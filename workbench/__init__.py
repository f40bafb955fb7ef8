"""Transfer Workbench core: datasets, backbones, advice and training, with no Qt import."""

__version__ = "0.1.0"
