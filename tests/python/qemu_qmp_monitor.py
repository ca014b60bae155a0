#!/usr/bin/env python3
"""Drive a QMP monitor on a chardev (a socket, or a mux over a socket) with
QEMU's Python client library (qemu.qmp).

Usage: qemu_qmp_monitor.py SOCKET
Exits non-zero (with the reason) on the first mismatch.
"""
import asyncio
import sys

from qemu.qmp import QMPClient, ExecuteError


async def main(sock: str) -> None:
    for attempt in range(2):
        # Each connection is a new session: greeting and negotiation again.
        qmp = QMPClient('chardevd-monitor-test')
        await qmp.connect(sock)
        assert qmp.greeting.QMP.version['qemu']['major'] == 10, qmp.greeting
        rows = {r['label']: r for r in await qmp.execute('query-chardev')}
        assert any(r['frontend-open'] for r in rows.values()), rows
        ring = {'type': 'ringbuf', 'data': {'size': 64}}
        assert await qmp.execute('chardev-add', {'id': f'r{attempt}', 'backend': ring}) == {}
        assert await qmp.execute('ringbuf-write', {'device': f'r{attempt}', 'data': 'over a monitor'}) == {}
        assert await qmp.execute('ringbuf-read', {'device': f'r{attempt}', 'size': 64}) == 'over a monitor'
        try:
            await qmp.execute('chardev-remove', {'id': 'nosuch'})
            raise AssertionError('removed a chardev that does not exist')
        except ExecuteError as e:
            assert str(e) == "Chardev 'nosuch' not found", str(e)
        assert await qmp.execute('chardev-remove', {'id': f'r{attempt}'}) == {}
        await qmp.disconnect()
    print('qemu.qmp: monitor OK')


asyncio.run(main(sys.argv[1]))
