"""digitlab: read handwritten digits, numbers and arithmetic worksheets."""

__version__ = "0.1.0"
