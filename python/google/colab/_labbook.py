"""Shared helpers of labbook's google.colab modules: where the drive is, and how a
runtime reaches the browser (display_data messages that labbook's UI acts on)."""

import os
import time

DRIVE_ENV = "LABBOOK_DRIVE"


def drive_root():
    """The user's drive as this runtime sees it (LABBOOK_DRIVE, set by the hub)."""
    root = os.environ.get(DRIVE_ENV)
    if not root:
        raise RuntimeError(
            "this runtime does not know where your drive is ($%s is not set): "
            "google.colab works in runtimes started by labbook" % DRIVE_ENV
        )
    return root


def new_id():
    """A unique, sortable name for one upload or download."""
    return "%d-%s" % (time.time_ns(), os.urandom(4).hex())


def publish(bundle):
    """Shows a display_data output with this mime bundle, as the cell's output."""
    from IPython.display import display

    display(bundle, raw=True)


def relative_to_drive(path):
    """path (real) relative to the drive's root, or None if it lies outside it."""
    root = os.path.realpath(drive_root())
    real = os.path.realpath(path)
    if real == root or not real.startswith(root.rstrip("/") + "/"):
        return None
    return real[len(root.rstrip("/")) + 1:]
