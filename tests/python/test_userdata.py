"""Unit tests of google.colab.userdata outside a kernel: a thread plays the agent on a
unix socket and answers as the hub would (docs/colab.md, "userdata")."""

import json
import os
import socket
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))

from google.colab import errors, userdata  # noqa: E402


class FakeAgent:
    """Answers each connection with answers[name] (a dict), recording the requests."""

    def __init__(self, answers):
        self.dir = tempfile.mkdtemp(prefix="lb-ud-")
        self.path = os.path.join(self.dir, "userdata.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.answers = answers
        self.requests = []
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                line = c.makefile("rb").readline()
                req = json.loads(line)
                self.requests.append(req)
                c.sendall(json.dumps(self.answers[req["name"]]).encode() + b"\n")

    def close(self):
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class UserdataTest(unittest.TestCase):
    def setUp(self):
        self.agent = FakeAgent(
            {
                "OK": {"status": "ok", "value": "s3cr3t é"},
                "MISSING": {"status": "not_found"},
                "DENIED": {"status": "no_access"},
                "BROKEN": {"status": "error", "message": "too many secret requests"},
            }
        )
        self.old = os.environ.get(userdata.SOCKET_ENV)
        os.environ[userdata.SOCKET_ENV] = self.agent.path

    def tearDown(self):
        self.agent.close()
        if self.old is None:
            os.environ.pop(userdata.SOCKET_ENV, None)
        else:
            os.environ[userdata.SOCKET_ENV] = self.old

    def test_value_and_errors(self):
        self.assertEqual(userdata.get("OK"), "s3cr3t é")
        self.assertEqual(self.agent.requests[-1], {"name": "OK"})
        with self.assertRaises(userdata.SecretNotFoundError) as e:
            userdata.get("MISSING")
        self.assertEqual(str(e.exception), "Secret MISSING does not exist.")
        self.assertIsInstance(e.exception, errors.Error)
        with self.assertRaises(userdata.NotebookAccessError) as e:
            userdata.get("DENIED")
        self.assertEqual(str(e.exception), "Notebook does not have access to secret DENIED")
        with self.assertRaisesRegex(RuntimeError, "too many secret requests"):
            userdata.get("BROKEN")
        with self.assertRaises(TypeError):
            userdata.get(42)

    def test_no_socket(self):
        os.environ.pop(userdata.SOCKET_ENV)
        with self.assertRaisesRegex(RuntimeError, "LABBOOK_USERDATA_SOCKET is not set"):
            userdata.get("OK")
        os.environ[userdata.SOCKET_ENV] = self.agent.path + ".gone"
        with self.assertRaisesRegex(RuntimeError, "cannot reach this runtime's agent"):
            userdata.get("OK")


if __name__ == "__main__":
    unittest.main()
