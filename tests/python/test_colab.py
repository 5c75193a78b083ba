"""Unit tests of labbook's google.colab package (python/), outside any kernel: a temp
folder plays the drive ($LABBOOK_DRIVE), and a thread plays the UI for upload().
Run: /usr/bin/python3 -m unittest discover -s tests/python (make test does)."""

import contextlib
import io
import os
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

from google.colab import _labbook, drive, files  # noqa: E402


class ColabTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.drive = os.path.join(self.tmp.name, "drive", "MyDrive")
        os.makedirs(self.drive)
        os.environ[_labbook.DRIVE_ENV] = self.drive
        self.published = []
        orig = _labbook.publish
        _labbook.publish = self.published.append
        self.addCleanup(setattr, _labbook, "publish", orig)
        self.cwd = os.path.join(self.tmp.name, "work")
        os.makedirs(self.cwd)
        old = os.getcwd()
        os.chdir(self.cwd)
        self.addCleanup(os.chdir, old)
        del drive._mounted[:]
        old_after = files.REMOVE_AFTER_S
        files.REMOVE_AFTER_S = 0.05
        self.addCleanup(setattr, files, "REMOVE_AFTER_S", old_after)

    def run_out(self, fn, *args, **kw):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            r = fn(*args, **kw)
        return r, out.getvalue()


class DriveTest(ColabTestCase):
    def test_mount_links_both_names_and_says_so(self):
        mp = os.path.join(self.tmp.name, "Drive")
        _, out = self.run_out(drive.mount, mp)
        self.assertEqual(out, "Mounted at %s\n" % mp)
        with open(os.path.join(self.drive, "a.txt"), "w") as f:
            f.write("hello")
        for name in ("MyDrive", "My Drive"):
            with open(os.path.join(mp, name, "a.txt")) as f:
                self.assertEqual(f.read(), "hello")

    def test_second_mount_says_already_mounted(self):
        mp = os.path.join(self.tmp.name, "Drive")
        self.run_out(drive.mount, mp)
        _, out = self.run_out(drive.mount, mp)
        self.assertEqual(
            out,
            "Drive already mounted at %s; to attempt to forcibly remount, call "
            'drive.mount("%s", force_remount=True).\n' % (mp, mp),
        )
        _, out = self.run_out(drive.mount, mp, force_remount=True)
        self.assertEqual(out, "Mounted at %s\n" % mp)

    def test_unusable_mount_points_raise_as_colab(self):
        full = os.path.join(self.tmp.name, "full")
        os.makedirs(full)
        open(os.path.join(full, "x"), "w").close()
        with self.assertRaisesRegex(ValueError, "^Mountpoint must not already contain files$"):
            drive.mount(full)
        afile = os.path.join(self.tmp.name, "afile")
        open(afile, "w").close()
        with self.assertRaisesRegex(ValueError, "^Mountpoint must either be a directory or not exist$"):
            drive.mount(afile)
        with self.assertRaisesRegex(ValueError, "must be in a directory that exists"):
            drive.mount(os.path.join(self.tmp.name, "no", "such"))
        with self.assertRaisesRegex(ValueError, "must not contain a space"):
            drive.mount(os.path.join(self.tmp.name, "a b"))

    def test_builtin_location_mounts_once_then_already_mounted(self):
        mp = os.path.dirname(self.drive)  # like /content/drive in a sandbox
        _, out = self.run_out(drive.mount, mp)
        self.assertEqual(out, "Mounted at %s\n" % mp)
        self.assertTrue(os.path.isdir(os.path.join(mp, "My Drive")))
        _, out = self.run_out(drive.mount, mp)
        self.assertTrue(out.startswith("Drive already mounted at %s;" % mp), out)
        self.run_out(drive.flush_and_unmount)
        self.assertTrue(os.path.isdir(self.drive), "the drive itself stays")
        self.assertFalse(os.path.lexists(os.path.join(mp, "My Drive")))

    def test_flush_and_unmount_removes_links(self):
        mp = os.path.join(self.tmp.name, "Drive")
        _, out = self.run_out(drive.flush_and_unmount)
        self.assertEqual(out, "Drive not mounted, so nothing to flush and unmount.\n")
        self.run_out(drive.mount, mp)
        _, out = self.run_out(drive.flush_and_unmount)
        self.assertIn("should now be visible in Drive", out)
        self.assertEqual(os.listdir(mp), [])
        _, out = self.run_out(drive.mount, mp)
        self.assertEqual(out, "Mounted at %s\n" % mp)

    def test_mount_inside_the_drive_is_refused(self):
        with self.assertRaisesRegex(ValueError, "inside the drive"):
            drive.mount(os.path.join(self.drive, "sub"))

    def test_no_drive_env(self):
        del os.environ[_labbook.DRIVE_ENV]
        with self.assertRaisesRegex(RuntimeError, "LABBOOK_DRIVE"):
            drive.mount(os.path.join(self.tmp.name, "Drive"))


class FilesTest(ColabTestCase):
    def ui(self, files_, marker=files.DONE):
        """Waits for the upload widget, then does what the UI does."""

        def run():
            while not self.published:
                time.sleep(0.01)
            w = self.published[0][files.UPLOAD_MIME]
            folder = os.path.join(self.drive, w["folder"])
            for name, data in files_.items():
                with open(os.path.join(folder, name), "wb") as f:
                    f.write(data)
            open(os.path.join(folder, marker), "w").close()

        t = threading.Thread(target=run)
        t.start()
        self.addCleanup(t.join)

    def test_upload_saves_into_cwd_and_returns_bytes(self):
        open("dup.txt", "w").close()
        # A part file the hub left from an abandoned chunked upload is not a user's file.
        self.ui({"dup.txt": b"new", "ünï cödé.bin": b"\x00\x01", ".~labbook-upload-x": b"part"})
        r, out = self.run_out(files.upload)
        self.assertEqual(r, {"dup.txt": b"new", "ünï cödé.bin": b"\x00\x01"})
        self.assertIn("Saving ünï cödé.bin to ünï cödé.bin\n", out)
        self.assertIn("Saving dup.txt to dup (1).txt\n", out)
        with open("dup (1).txt", "rb") as f:
            self.assertEqual(f.read(), b"new")
        uploads = os.path.join(self.drive, files.UPLOADS)
        self.assertEqual(len(os.listdir(uploads)), 1, "the folder stays a moment for the UI")
        for _ in range(100):
            if not os.listdir(uploads):
                break
            time.sleep(0.02)
        self.assertEqual(os.listdir(uploads), [])
        bundle = self.published[0]
        self.assertIn("text/plain", bundle)
        self.assertTrue(bundle[files.UPLOAD_MIME]["folder"].startswith(".labbook/uploads/"))

    def test_upload_cancel_returns_empty(self):
        self.ui({}, marker=files.CANCEL)
        r, _ = self.run_out(files.upload)
        self.assertEqual(r, {})

    def test_upload_times_out_when_asked(self):
        os.environ[files.TIMEOUT_ENV] = "0.2"
        self.addCleanup(os.environ.pop, files.TIMEOUT_ENV)
        with self.assertRaises(TimeoutError):
            self.run_out(files.upload)
        self.assertEqual(os.listdir(os.path.join(self.drive, files.UPLOADS)), [])

    def test_download_copies_outside_files_into_the_drive(self):
        with open("out.csv", "w") as f:
            f.write("a,b\n")
        files.download("out.csv")
        w = self.published[0][files.DOWNLOAD_MIME]
        self.assertEqual(w["name"], "out.csv")
        self.assertTrue(w["path"].startswith(".labbook/downloads/"))
        with open(os.path.join(self.drive, w["path"])) as f:
            self.assertEqual(f.read(), "a,b\n")

    def test_download_of_a_drive_file_is_not_copied(self):
        mp = os.path.join(self.tmp.name, "Drive")
        self.run_out(drive.mount, mp)
        os.makedirs(os.path.join(self.drive, "sub"))
        open(os.path.join(self.drive, "sub", "x.txt"), "w").close()
        files.download(os.path.join(mp, "My Drive", "sub", "x.txt"))
        self.assertEqual(self.published[0][files.DOWNLOAD_MIME], {"path": "sub/x.txt", "name": "x.txt"})

    def test_download_missing_file(self):
        with self.assertRaisesRegex(FileNotFoundError, "Cannot find file: nope.txt"):
            files.download("nope.txt")


class NamespaceTest(unittest.TestCase):
    def test_google_is_a_namespace_friendly_package(self):
        import google

        self.assertTrue(any(p.endswith(os.path.join("python", "google")) for p in google.__path__))

    def test_other_google_packages_stay_importable(self):
        # As google.protobuf would be: a google/ folder later on sys.path, with or
        # without an __init__.py of its own.
        import subprocess

        with tempfile.TemporaryDirectory() as other:
            os.makedirs(os.path.join(other, "google", "otherpkg"))
            open(os.path.join(other, "google", "otherpkg", "__init__.py"), "w").close()
            env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "..", "..", "python") + ":" + other)
            r = subprocess.run(
                [sys.executable, "-c", "import google.colab.drive, google.otherpkg; print('ok')"],
                env=env,
                capture_output=True,
                text=True,
            )
            self.assertEqual(r.stdout, "ok\n", r.stderr)


if __name__ == "__main__":
    unittest.main()
