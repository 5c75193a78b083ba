"""Builds test archives, hostile ones included, from a JSON spec on stdin.

{"out": PATH, "format": "zip"|"zip-store"|"tar"|"tar.gz"|"tar.bz2"|"tar.xz"|"tar.zst",
 "entries": [{"name": N | "name_b64": BASE64 (raw bytes), "type": "file"|"dir"|"symlink"|"hardlink"|"chr"|"fifo",
              "text": S | "zeros": BYTES | "random": BYTES, "mode": INT, "target": T}],
 "many": {"prefix": P, "count": N, "size": BYTES}}   (N files of BYTES random bytes)
"""
import base64
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile


def payload(e):
    if "text" in e:
        return e["text"].encode()
    if "zeros" in e:
        return bytes(e["zeros"])
    if "random" in e:
        return os.urandom(e["random"])
    return b""


def entries(spec):
    for e in spec.get("entries", []):
        if "name_b64" in e:  # a name of raw bytes, not necessarily UTF-8
            e = dict(e, name=base64.b64decode(e["name_b64"]).decode("utf-8", "surrogateescape"))
        yield e
    many = spec.get("many")
    if many:
        for i in range(many["count"]):
            yield {"name": f"{many['prefix']}{i:05d}.bin", "random": many["size"]}


def write_tar(spec, fileobj, mode):
    with tarfile.open(fileobj=fileobj, mode=mode, format=tarfile.PAX_FORMAT) as t:
        for e in entries(spec):
            ti = tarfile.TarInfo(e["name"])
            ti.mode = e.get("mode", 0o644)
            kind = e.get("type", "file")
            data = None
            if kind == "file":
                data = payload(e)
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e.get("mode", 0o755)
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["target"]
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e["target"]
            elif kind == "chr":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = 1, 3
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            t.addfile(ti, io.BytesIO(data) if data is not None else None)


def main():
    spec = json.load(sys.stdin)
    out, fmt = spec["out"], spec["format"]
    if fmt in ("zip", "zip-store"):
        comp = zipfile.ZIP_STORED if fmt == "zip-store" else zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(out, "w", comp) as z:
            for e in entries(spec):
                if e.get("type") == "dir":
                    z.writestr(zipfile.ZipInfo(e["name"].rstrip("/") + "/"), b"")
                    continue
                zi = zipfile.ZipInfo(e["name"])
                zi.compress_type = comp
                mode = e.get("mode", 0o644)
                if e.get("type") == "symlink":
                    zi.external_attr = (0o120777 << 16)
                    z.writestr(zi, e["target"])
                    continue
                zi.external_attr = ((0o100000 | mode) << 16)
                z.writestr(zi, payload(e))
        return
    modes = {"tar": "w", "tar.gz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}
    if fmt == "tar.zst":
        buf = io.BytesIO()
        write_tar(spec, buf, "w")
        with open(out, "wb") as f:
            subprocess.run(["zstd", "-q", "-c"], input=buf.getvalue(), stdout=f, check=True)
        return
    with open(out, "wb") as f:
        write_tar(spec, f, modes[fmt])


main()
