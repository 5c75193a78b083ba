"""drive.mount() as in Colab, over labbook's drive (docs/colab.md).

The runtime already sees the user's drive as a local folder ($LABBOOK_DRIVE: in a
sandbox /content/drive/MyDrive, a bind mount of the folder on the server's disk).
Mounting at MOUNTPOINT makes MOUNTPOINT/MyDrive and MOUNTPOINT/My Drive symbolic
links to it, so reads go at local-disk speed and both spellings of Colab notebooks
work. The messages and errors are Colab's.
"""

import os
import sys

from google.colab import _labbook

__all__ = ["mount", "flush_and_unmount"]

_LINK = "MyDrive"
_OLD_LINK = "My Drive"  # what older notebooks use

# Mount points made or seen by this process, for flush_and_unmount().
_mounted = []


def _is_drive(path, drive):
    try:
        return os.path.samefile(path, drive)
    except OSError:
        return False


def _builtin(mp, drive):
    """Whether mp is the folder whose MyDrive the sandbox already binds (/content/drive)."""
    return os.path.basename(drive) == _LINK and os.path.realpath(mp) == os.path.realpath(
        os.path.dirname(drive)
    )


def _remember(mp):
    if mp not in _mounted:
        _mounted.append(mp)


def _link_old_name(mp, drive):
    # Straight to the drive, not to MyDrive: each link followed costs an overlayfs
    # lookup in a sandbox (docs/benchmarks.md, "Drive reads in a runtime").
    old = os.path.join(mp, _OLD_LINK)
    if not os.path.lexists(old):
        os.symlink(drive, old)


def _unlink(mp):
    """Removes what mount() made in mp: our links (a bind mount stays)."""
    for name in (_OLD_LINK, _LINK):
        p = os.path.join(mp, name)
        if os.path.islink(p):
            os.unlink(p)


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    """Makes your labbook drive appear at MOUNTPOINT/MyDrive (and MOUNTPOINT/My Drive).

    timeout_ms is accepted for compatibility (nothing here waits); readonly=True is
    not enforced: the drive stays writable, and a warning says so.
    """
    del timeout_ms  # nothing to wait for: the drive is already a local folder
    mountpoint = os.fspath(mountpoint)
    if " " in mountpoint:
        raise ValueError("Mountpoint must not contain a space.")
    mountpoint = os.path.expanduser(mountpoint)
    mp = os.path.abspath(mountpoint)
    drive = _labbook.drive_root()
    if readonly:
        print(
            "Warning: labbook mounts your drive read-write; readonly=True is not enforced.",
            file=sys.stderr,
        )
    link = os.path.join(mp, _LINK)
    if _is_drive(link, drive):
        if _builtin(mp, drive):
            # The sandbox binds the drive here from the start: the first mount in this
            # process says "Mounted", as Colab's first mount at /content/drive does.
            first = mp not in _mounted
            _link_old_name(mp, drive)
            _remember(mp)
            if first or force_remount:
                print("Mounted at %s" % mountpoint)
                return
        else:
            _remember(mp)
        if not force_remount:
            print(
                "Drive already mounted at %s; to attempt to forcibly remount, "
                'call drive.mount("%s", force_remount=True).' % (mountpoint, mountpoint)
            )
            return
        _unlink(mp)
    normed = os.path.normpath(mountpoint)
    if "/" in normed and not os.path.exists(os.path.dirname(mp)):
        raise ValueError("Mountpoint must be in a directory that exists")
    if os.path.lexists(mp):
        if not os.path.isdir(mp):
            raise ValueError("Mountpoint must either be a directory or not exist")
        if os.listdir(mp):
            raise ValueError("Mountpoint must not already contain files")
    real_drive = os.path.realpath(drive)
    if os.path.realpath(mp) == real_drive or os.path.realpath(mp).startswith(real_drive + "/"):
        raise ValueError("Mountpoint must not be inside the drive itself")
    try:
        if not os.path.isdir(mp):
            os.mkdir(mp)
        os.symlink(drive, link)
        _link_old_name(mp, drive)
    except OSError as e:
        raise ValueError(
            "Mountpoint %s cannot be made: %s (outside a sandbox, mount points are "
            "folders of the server that this runtime's user must be able to create)"
            % (mountpoint, e.strerror or e)
        ) from e
    _remember(mp)
    print("Mounted at %s" % mountpoint)


def flush_and_unmount(timeout_ms=24 * 60 * 60 * 1000):
    """Writes everything out (os.sync) and removes the mounts this process made."""
    del timeout_ms
    if not _mounted:
        print("Drive not mounted, so nothing to flush and unmount.")
        return
    os.sync()
    for mp in _mounted:
        _unlink(mp)
    del _mounted[:]
    print("All changes made in this colab session should now be visible in Drive.")
