"""LAformer: image restoration with Rank Enhanced Linear Attention, and its experiment suite."""

__version__ = "0.1.0"
