"""files.upload() and files.download() as in Colab, through labbook's UI (docs/colab.md).

Both talk to the browser through the drive: upload() shows an upload widget (a
display_data output of type application/vnd.labbook.upload+json) and waits until the
UI has put the chosen files into a folder of the drive and marked it done;
download() puts the file where the hub serves it and asks the UI, the same way
(application/vnd.labbook.download+json), to make the browser download it.
"""

import os
import shutil
import threading
import time

from google.colab import _labbook

__all__ = ["upload", "download"]

UPLOAD_MIME = "application/vnd.labbook.upload+json"
DOWNLOAD_MIME = "application/vnd.labbook.download+json"
UPLOADS = ".labbook/uploads"
DOWNLOADS = ".labbook/downloads"
DONE = ".done"
CANCEL = ".cancel"
HUB_TEMP = ".~labbook-"  # the hub's files of writes in progress (docs/contents.md)
TIMEOUT_ENV = "LABBOOK_UPLOAD_TIMEOUT_S"  # 0 or unset: wait as long as it takes
POLL_S = 0.05
STALE_S = 24 * 3600  # left-over transfer folders older than this are removed
# The UI's write of the marker may still be finishing (the hub answers after the file is
# in place): the folder goes this long after the marker is seen.
REMOVE_AFTER_S = 2.0


def _remove_stale(parent):
    try:
        names = os.listdir(parent)
    except OSError:
        return
    now = time.time()
    for n in names:
        p = os.path.join(parent, n)
        try:
            if now - os.lstat(p).st_mtime > STALE_S:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _unique_name(folder, name):
    """name, or "name (1).ext", "name (2).ext"... if folder already has it (as Colab)."""
    if not os.path.lexists(os.path.join(folder, name)):
        return name
    base, ext = os.path.splitext(name)
    n = 1
    while os.path.lexists(os.path.join(folder, "%s (%d)%s" % (base, n, ext))):
        n += 1
    return "%s (%d)%s" % (base, n, ext)


def upload(target_dir=""):
    """Lets the user choose files in the browser; saves them into target_dir (default:
    the working directory) and returns {name: contents as bytes}. Cancelled: {}."""
    root = _labbook.drive_root()
    uid = _labbook.new_id()
    rel = "%s/%s" % (UPLOADS, uid)
    folder = os.path.join(root, rel)
    _remove_stale(os.path.join(root, UPLOADS))
    try:
        timeout = float(os.environ.get(TIMEOUT_ENV) or 0)
    except ValueError:
        timeout = 0
    deadline = time.monotonic() + timeout if timeout > 0 else None
    os.makedirs(folder)
    seen = False
    try:  # from here on, however it ends (an interrupt too), the folder goes
        _labbook.publish(
            {
                UPLOAD_MIME: {"id": uid, "folder": rel},
                "text/plain": "Upload widget: open this notebook in labbook's UI to choose files",
            }
        )
        while True:
            if os.path.lexists(os.path.join(folder, CANCEL)):
                seen = True
                return {}
            if os.path.lexists(os.path.join(folder, DONE)):
                seen = True
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("no files were chosen within %g s" % timeout)
            time.sleep(POLL_S)  # KeyboardInterrupt (interrupt the cell) ends the wait
        dest_dir = target_dir or "."
        if target_dir:
            os.makedirs(target_dir, exist_ok=True)
        uploaded = {}
        for name in sorted(os.listdir(folder)):
            src = os.path.join(folder, name)
            if name in (DONE, CANCEL) or name.startswith(HUB_TEMP) or not os.path.isfile(src):
                continue
            dest = os.path.join(target_dir, _unique_name(dest_dir, name))
            shutil.move(src, dest)
            print("Saving %s to %s" % (name, dest))
            with open(dest, "rb") as f:
                uploaded[name] = f.read()
        return uploaded
    finally:
        if seen:
            t = threading.Timer(REMOVE_AFTER_S, shutil.rmtree, (folder, True))
            t.daemon = True
            t.start()
        else:
            shutil.rmtree(folder, ignore_errors=True)


def download(filename):
    """Makes the browser download filename (a file of this runtime)."""
    if not os.path.exists(filename):
        raise FileNotFoundError("Cannot find file: %s" % filename)
    if os.path.isdir(filename):
        raise IsADirectoryError(
            "Cannot download a folder: %s (make an archive first: shutil.make_archive)" % filename
        )
    name = os.path.basename(os.path.normpath(filename))
    rel = _labbook.relative_to_drive(filename)
    if rel is None:
        root = _labbook.drive_root()
        _remove_stale(os.path.join(root, DOWNLOADS))
        folder = "%s/%s" % (DOWNLOADS, _labbook.new_id())
        os.makedirs(os.path.join(root, folder))
        shutil.copyfile(filename, os.path.join(root, folder, name))
        rel = "%s/%s" % (folder, name)
    _labbook.publish(
        {
            DOWNLOAD_MIME: {"path": rel, "name": name},
            "text/plain": "Download %s: open this notebook in labbook's UI to receive it" % name,
        }
    )
