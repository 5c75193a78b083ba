"""Errors of labbook's google.colab package, as Colab names them."""


class Error(Exception):
    """Base class of google.colab's own errors."""
