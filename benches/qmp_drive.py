#!/usr/bin/env python3
"""Drive a QMP unix socket: negotiate, add a 1 MiB ring, run N query-chardev
(KIND=query) or 4 KiB base64 ringbuf-write (KIND=write) commands one at a
time, then quit. Used by benches/instructions.sh.

    python3 benches/qmp_drive.py SOCKET N KIND
"""
import socket,sys,time,json,base64
path,n,kind=sys.argv[1],int(sys.argv[2]),sys.argv[3]
s=socket.socket(socket.AF_UNIX)
for _ in range(600):
    try: s.connect(path); break
    except OSError: time.sleep(0.1)
f=s.makefile('rwb')
f.readline()
def cmd(c):
    f.write((json.dumps(c)+"\n").encode()); f.flush(); return f.readline()
cmd({"execute":"qmp_capabilities"})
cmd({"execute":"chardev-add","arguments":{"id":"r","backend":{"type":"ringbuf","data":{"size":1<<20}}}})
data=base64.b64encode(bytes(range(256))*16).decode()
for i in range(n):
    if kind=="query": r=cmd({"execute":"query-chardev"})
    else: r=cmd({"execute":"ringbuf-write","arguments":{"device":"r","data":data,"format":"base64"}})
    assert b"return" in r, r
cmd({"execute":"quit"})
