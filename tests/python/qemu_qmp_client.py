#!/usr/bin/env python3
"""Drive chardevd with QEMU's own Python client library (qemu.qmp).

Usage: qemu_qmp_client.py SOCKET
Runs every chardev command through qemu.qmp's QMPClient and checks the results;
exits non-zero (with the reason) on the first mismatch.
"""
import asyncio
import sys

from qemu.qmp import QMPClient, ExecuteError


async def main(sock: str) -> None:
    qmp = QMPClient('chardevd-test')
    await qmp.connect(sock)
    assert qmp.greeting.QMP.version['qemu']['major'] == 10, qmp.greeting

    names = {c['name'] for c in await qmp.execute('query-commands')}
    for want in ('query-chardev', 'query-chardev-backends', 'ringbuf-write', 'ringbuf-read',
                 'chardev-add', 'chardev-change', 'chardev-remove', 'chardev-send-break'):
        assert want in names, want

    backends = {b['name'] for b in await qmp.execute('query-chardev-backends')}
    assert {'null', 'ringbuf', 'memory'} <= backends, backends

    ring = {'type': 'ringbuf', 'data': {'size': 1024}}
    assert await qmp.execute('chardev-add', {'id': 'py0', 'backend': ring}) == {}
    assert await qmp.execute('chardev-add', {'id': 'py1', 'backend': {'type': 'null', 'data': {}}}) == {}
    try:
        await qmp.execute('chardev-add', {'id': 'py0', 'backend': ring})
        raise AssertionError('duplicate id accepted')
    except ExecuteError as e:
        assert str(e) == "Chardev with id 'py0' already exists", str(e)

    assert await qmp.execute('ringbuf-write', {'device': 'py0', 'data': 'héllo'}) == {}
    assert await qmp.execute('ringbuf-read', {'device': 'py0', 'size': 100}) == 'héllo'
    assert await qmp.execute('ringbuf-write', {'device': 'py0', 'data': 'aGk=', 'format': 'base64'}) == {}
    assert await qmp.execute('ringbuf-read', {'device': 'py0', 'size': 100, 'format': 'base64'}) == 'aGk='

    rows = {r['label']: r for r in await qmp.execute('query-chardev')}
    assert rows['py0']['filename'] == 'ringbuf' and rows['py0']['frontend-open'] is False, rows
    assert await qmp.execute('chardev-send-break', {'id': 'py0'}) == {}
    assert await qmp.execute('chardev-change', {'id': 'py1', 'backend': {'type': 'memory', 'data': {}}}) == {}
    rows = {r['label']: r for r in await qmp.execute('query-chardev')}
    assert rows['py1']['filename'] == 'memory', rows
    assert await qmp.execute('chardev-remove', {'id': 'py0'}) == {}
    assert await qmp.execute('chardev-remove', {'id': 'py1'}) == {}

    schema = await qmp.execute('query-qmp-schema')
    assert any(e['name'] == 'chardev-add' for e in schema)

    # Events through the library's event listener.
    await qmp.execute('chardev-add', {'id': 'pc', 'backend': {'type': 'null', 'data': {}}})
    await qmp.execute('device_add', {'driver': 'port', 'id': 'port0', 'chardev': 'pc'})
    from qemu.qmp import EventListener
    listener = EventListener(('VSERPORT_CHANGE',))
    with qmp.listen(listener):
        await qmp.execute('__org.chardevd_port-set-open', {'id': 'port0', 'open': True})
        event = await asyncio.wait_for(listener.get(), 5)
    assert event['event'] == 'VSERPORT_CHANGE' and event['data'] == {'id': 'port0', 'open': True}, event
    await qmp.execute('device_del', {'id': 'port0'})
    await qmp.execute('chardev-remove', {'id': 'pc'})
    await qmp.disconnect()
    print('qemu.qmp: all chardev commands OK')


asyncio.run(main(sys.argv[1]))
