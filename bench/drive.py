#!/usr/bin/python3
"""Drive benchmark client (standard library only). Prints one JSON object.
usage: drive.py cp SRC DST                         the floor: cp, then sync (DST removed after)
       drive.py tus BASE TOKEN FILE                tus upload: creation + one PATCH (sendfile)
       drive.py extract BASE TOKEN ARCHIVE         tus upload with extract=1, then until extracted
       drive.py contents BASE TOKEN FILE           JupyterLab's chunked upload (1 MiB base64 chunks)
       drive.py many BASE TOKEN DIR                every file of DIR by its own contents PUT"""
import base64, http.client, json, os, sys, time, urllib.parse

if sys.argv[1] == 'cp':
    import subprocess
    src, dst = sys.argv[2], sys.argv[3]
    mb = os.path.getsize(src) / 1e6
    t0 = time.perf_counter()
    subprocess.run(['cp', src, dst], check=True)
    t1 = time.perf_counter()
    subprocess.run(['sync'], check=True)
    t2 = time.perf_counter()
    os.unlink(dst)
    subprocess.run(['sync'], check=True)
    print(json.dumps({'mode': 'cp', 'cp_MBps': round(mb / (t1 - t0), 1),
                      'cp_sync_MBps': round(mb / (t2 - t0), 1)}))
    sys.exit(0)
mode, base, token = sys.argv[1], sys.argv[2].rstrip('/'), sys.argv[3]
u = urllib.parse.urlsplit(base)
AUTH = {'Authorization': 'token ' + token}


def conn():
    return http.client.HTTPConnection(u.hostname, u.port, timeout=600)


def request(c, method, path, body=None, headers=None):
    c.request(method, path, body=body, headers={**AUTH, **(headers or {})})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit('%s %s: %d %s' % (method, path, r.status, data[:300]))
    return r, data


def tus_upload(path, metadata):
    size = os.path.getsize(path)
    c = conn()
    md = ','.join('%s %s' % (k, base64.b64encode(v.encode()).decode()) for k, v in metadata.items())
    r, _ = request(c, 'POST', '/api/uploads/', headers={
        'Tus-Resumable': '1.0.0', 'Upload-Length': str(size), 'Upload-Metadata': md})
    loc = urllib.parse.urlsplit(r.getheader('Location')).path
    c.putrequest('PATCH', loc)
    for k, v in {**AUTH, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0',
                 'Content-Type': 'application/offset+octet-stream', 'Content-Length': str(size)}.items():
        c.putheader(k, v)
    c.endheaders()
    with open(path, 'rb') as f:
        c.sock.sendfile(f)
    r = c.getresponse()
    r.read()
    if r.status != 204:
        raise SystemExit('PATCH: %d' % r.status)
    return r


def contents_chunked(path):
    size = os.path.getsize(path)
    c = conn()
    name = '/api/contents/' + urllib.parse.quote(os.path.basename(path))
    n = (size + (1 << 20) - 1) >> 20
    with open(path, 'rb') as f:
        for i in range(1, n + 1):
            b = base64.b64encode(f.read(1 << 20)).decode()
            body = json.dumps({'type': 'file', 'format': 'base64', 'content': b,
                               'chunk': -1 if i == n else i})
            request(c, 'PUT', name, body, {'Content-Type': 'application/json'})


def many(d):
    c = conn()
    request(c, 'PUT', '/api/contents/many', json.dumps({'type': 'directory'}),
            {'Content-Type': 'application/json'})
    n = 0
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), 'rb') as f:
            body = json.dumps({'type': 'file', 'format': 'base64',
                               'content': base64.b64encode(f.read()).decode()})
        request(c, 'PUT', '/api/contents/many/' + name, body, {'Content-Type': 'application/json'})
        n += 1
    return n


t0 = time.perf_counter()
if mode == 'tus':
    try:  # not timed: the previous round's file, as cp's copy is removed untimed
        request(conn(), 'DELETE', '/api/contents/' + urllib.parse.quote(os.path.basename(sys.argv[4])))
    except SystemExit:
        pass
    os.sync()
    t0 = time.perf_counter()
    tus_upload(sys.argv[4], {'filename': os.path.basename(sys.argv[4])})
    dt = time.perf_counter() - t0
    mb = os.path.getsize(sys.argv[4]) / 1e6
    print(json.dumps({'mode': mode, 'MB': round(mb), 'seconds': round(dt, 3), 'MBps': round(mb / dt, 1)}))
elif mode == 'contents':
    contents_chunked(sys.argv[4])
    dt = time.perf_counter() - t0
    mb = os.path.getsize(sys.argv[4]) / 1e6
    print(json.dumps({'mode': mode, 'MB': round(mb), 'seconds': round(dt, 3), 'MBps': round(mb / dt, 1)}))
elif mode == 'extract':
    r = tus_upload(sys.argv[4], {'filename': os.path.basename(sys.argv[4]), 'path': 'dataset',
                                 'extract': '1'})
    t1 = time.perf_counter()
    job = r.getheader('Labbook-Extract-Id')
    c = conn()
    while True:
        _, data = request(c, 'GET', '/api/drive/extract/' + job)
        st = json.loads(data)
        if st['state'] != 'running':
            break
        time.sleep(0.005)
    t2 = time.perf_counter()
    if st['state'] != 'done':
        raise SystemExit('extraction failed: %s' % st['error'])
    print(json.dumps({'mode': mode, 'files': st['entries'], 'upload_s': round(t1 - t0, 3),
                      'extract_s': round(t2 - t1, 3), 'total_s': round(t2 - t0, 3),
                      'extract_files_per_s': round(st['entries'] / (t2 - t1)),
                      'files_per_s': round(st['entries'] / (t2 - t0))}))
elif mode == 'many':
    n = many(sys.argv[4])
    dt = time.perf_counter() - t0
    print(json.dumps({'mode': mode, 'files': n, 'seconds': round(dt, 3), 'files_per_s': round(n / dt)}))
else:
    raise SystemExit(__doc__)
