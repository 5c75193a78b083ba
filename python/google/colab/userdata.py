"""userdata.get() as in Colab: the secrets of labbook's Secrets panel (docs/colab.md).

A runtime cannot reach the hub's port, so the request goes to the runtime's agent over a
unix socket only this runtime can reach ($LABBOOK_USERDATA_SOCKET, set by the hub); the
agent asks the hub, which answers for this runtime's owner and the notebook its session
is bound to. The names and messages of the exceptions are Colab's.
"""

import json
import os
import socket

from google.colab import errors

__all__ = ["get", "SecretNotFoundError", "NotebookAccessError", "TimeoutException"]

SOCKET_ENV = "LABBOOK_USERDATA_SOCKET"
TIMEOUT_S = 60
_REPLY_MAX = 1 << 20  # a value is at most 64 KiB; its JSON a few times that


class NotebookAccessError(Exception):
    """The notebook has not been given access to this secret (the Secrets panel's
    "Notebook access" toggle)."""

    def __init__(self, key):
        super().__init__("Notebook does not have access to secret %s" % key)


class SecretNotFoundError(errors.Error):
    """No secret of this name exists."""

    def __init__(self, key):
        super().__init__("Secret %s does not exist." % key)


class TimeoutException(errors.Error):
    """No answer came in time."""

    def __init__(self, key):
        super().__init__("Requesting secret %s timed out." % key)


def _ask(key):
    path = os.environ.get(SOCKET_ENV)
    if not path:
        raise RuntimeError(
            "this runtime cannot ask for secrets ($%s is not set): google.colab.userdata "
            "works in runtimes started by labbook" % SOCKET_ENV
        )
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT_S)
    try:
        try:
            s.connect(path)
        except OSError as e:
            raise RuntimeError(
                "cannot reach this runtime's agent at %s: %s" % (path, e.strerror or e)
            ) from e
        s.sendall(json.dumps({"name": key}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            if len(buf) > _REPLY_MAX:
                raise RuntimeError("the agent's answer is too long")
    except socket.timeout:
        raise TimeoutException(key) from None
    finally:
        s.close()
    if not buf:
        raise RuntimeError("this runtime's agent closed the connection without an answer")
    return json.loads(buf)


def get(key):
    """The value of your secret named key, if this notebook has access to it.

    Raises SecretNotFoundError when you have no secret of that name, NotebookAccessError
    when this notebook has not been given access to it (Secrets panel, "Notebook access").
    """
    if not isinstance(key, str):
        raise TypeError("a secret's name is a str, not %s" % type(key).__name__)
    ans = _ask(key)
    status = ans.get("status")
    if status == "ok":
        return ans.get("value", "")
    if status == "not_found":
        raise SecretNotFoundError(key)
    if status == "no_access":
        raise NotebookAccessError(key)
    raise RuntimeError("cannot get secret %s: %s" % (key, ans.get("message", "unknown error")))
