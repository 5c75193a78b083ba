#!/usr/bin/python3
"""Prints the reference vectors embedded in test_wsframe.c, produced by jupyter_server's
own serializers (Debian's python3-jupyter-server), so our framing is checked against
the reference implementation. Run: /usr/bin/python3 tests/unit/wire/gen_wsframe_vectors.py"""
import json

from jupyter_server.base.zmqhandlers import (
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)

HEADER = {"msg_id": "a1b2", "msg_type": "execute_request", "username": "u",
          "session": "s1", "date": "2024-01-01T00:00:00.000000Z", "version": "5.3"}
PARENT = {}
META = {"tag": "caf\u00e9 \u2603"}
CONTENT = {"code": "print('h\u00e9llo \U0001f600')\n", "silent": False, "n": [1, 2.5, None]}


def pack(o):
    # what jupyter_client's Session.pack does (json_packer)
    return json.dumps(o, ensure_ascii=False, allow_nan=False).encode("utf8")


def c_hex(name, data):
    print(f"static const char {name}[] =")
    h = data.hex()
    for i in range(0, len(h), 96):
        print(f'    "{h[i:i + 96]}"')
    print(";")


parts = [pack(HEADER), pack(PARENT), pack(META), pack(CONTENT)]
# v1: what jupyter_server sends to a v1 client
c_hex("ref_v1_plain", serialize_msg_to_ws_v1(parts, "shell"))
c_hex("ref_v1_buffers", serialize_msg_to_ws_v1(parts + [b"\x00\x01\x02", b"", b"xyz"], "iopub"))
# legacy binary: what a legacy client sends with buffers (and jupyter_server to it)
msg = {"header": HEADER, "msg_id": HEADER["msg_id"], "msg_type": HEADER["msg_type"],
       "parent_header": PARENT, "metadata": META, "content": CONTENT,
       "channel": "iopub", "buffers": [b"\x00\x01\x02", b"", b"xyz"]}
c_hex("ref_legacy_binary", serialize_binary_message(msg))
# legacy text: what jupyter_server sends for a message without buffers
msg = {"header": HEADER, "msg_id": HEADER["msg_id"], "msg_type": HEADER["msg_type"],
       "parent_header": PARENT, "metadata": META, "content": CONTENT, "buffers": [],
       "channel": "iopub"}
c_hex("ref_legacy_text", json.dumps(msg).encode())
