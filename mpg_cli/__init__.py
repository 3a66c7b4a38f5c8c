"""mpg: miles per gallon for training large language models."""

__version__ = "0.1.0"
