"""labbook's stand-in for Colab's google.colab package (docs/colab.md).

drive.mount() shows the user's labbook drive where a Colab notebook expects Google
Drive; files.upload() and files.download() move files between the browser and the
runtime through labbook's UI; userdata.get() reads the secrets of the Secrets panel.
Kernels find this package on PYTHONPATH, which the hub sets for every runtime.
"""

from google.colab import drive, files, userdata  # noqa: F401

__all__ = ["drive", "files", "userdata"]
