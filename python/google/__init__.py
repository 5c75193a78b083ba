# labbook's google.colab compatibility package lives under this "google" package.
# Other distributions (protobuf, google-cloud-*) install their own google.* modules:
# extend the package path so that they stay importable next to ours.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
