#!/usr/bin/env python3
"""Build src/qmp/schema.json: the QMP schema chardevd serves and validates against.

Input: QEMU 10.0.2's own query-qmp-schema output (../shared/spec/qemu-10.0.2-introspection.json).
Output: the SchemaInfo entities reachable from the commands and events chardevd implements,
in QEMU's order, plus chardevd's downstream extensions (names prefixed __org.chardevd_).
Run it again whenever the command set changes:  python3 tools/gen-schema.py
"""
import json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, '..', '..', 'shared', 'spec', 'qemu-10.0.2-introspection.json')
DST = os.path.join(HERE, '..', 'src', 'qmp', 'schema.json')

COMMANDS = [
    'qmp_capabilities', 'query-version', 'query-commands', 'query-qmp-schema',
    'query-chardev', 'query-chardev-backends', 'ringbuf-write', 'ringbuf-read',
    'chardev-add', 'chardev-change', 'chardev-remove', 'chardev-send-break',
    'device_add', 'device_del', 'quit',
    'getfd', 'closefd', 'object-add', 'object-del', 'yank', 'query-yank',
    'input-send-event', 'send-key', 'query-mice',
]

# object-add takes QEMU's ObjectOptions union: keep the object types chardevd
# knows (TLS credentials and authorization; anon, psk and pam are refused at
# run time, as a QEMU built without them refuses them).
OBJECT_TYPES = ['authz-list', 'authz-listfile', 'authz-pam', 'authz-simple',
                'tls-creds-anon', 'tls-creds-psk', 'tls-creds-x509']
EVENTS = ['SHUTDOWN', 'VSERPORT_CHANGE', 'DEVICE_DELETED']

# Downstream extensions (QAPI naming rule for vendor extensions) are not
# here: each extension command carries its entities in its own file
# (src/commands/*.rs, `Command::SCHEMA`), extension events in
# src/events.rs; the served schema appends them at start-up.

COMMON_MEMBERS = [
    ('logtimestamp', 'bool'),
    ('__org.chardevd_logsize', 'int'),
    ('__org.chardevd_logbackups', 'int'),
]
CONSOLE_MEMBERS = [
    ('__org.chardevd_max-clients', 'int'),
    ('__org.chardevd_history', 'int'),
    ('__org.chardevd_client-queue', 'int'),
    ('__org.chardevd_overflow', '__org.chardevd_ConsoleOverflow'),
    ('__org.chardevd_overflow-marker', 'bool'),
    ('__org.chardevd_input', '__org.chardevd_ConsoleInput'),
    ('__org.chardevd_client-events', 'bool'),
]
def enum(name, values):
    return {'name': name, 'members': [{'name': v} for v in values], 'meta-type': 'enum', 'values': values}
EXTENSION_ENUMS = [
    enum('__org.chardevd_ConsoleOverflow', ['block', 'drop', 'disconnect']),
    enum('__org.chardevd_ConsoleInput', ['all', 'first', 'none']),
]

def main():
    src = json.load(open(SRC))
    schema = src['query-qmp-schema']
    by_name = {e['name']: e for e in schema}
    # Cut object-add's union and its tag enum to OBJECT_TYPES.
    oa = by_name[by_name['object-add']['arg-type']]
    oa['variants'] = [v for v in oa['variants'] if v['case'] in OBJECT_TYPES]
    tag = [m for m in oa['members'] if m['name'] == 'qom-type'][0]['type']
    by_name[tag]['values'] = [v for v in by_name[tag]['values'] if v in OBJECT_TYPES]
    if 'members' in by_name[tag]:
        by_name[tag]['members'] = [m for m in by_name[tag]['members'] if m['name'] in OBJECT_TYPES]
    # Downstream-extension members: a mux's frontend limit; a listening
    # socket's console options (its clients, history, queues, roles,
    # events); a unix server's mode, owner and group.
    backend = [m for m in by_name[by_name['chardev-add']['arg-type']]['members'] if m['name'] == 'backend'][0]
    union = by_name[backend['type']]
    extras = {}
    for e in EXTENSION_ENUMS:
        extras[e['name']] = e
    def data_of(case):
        wrapper = [v for v in union['variants'] if v['case'] == case][0]['type']
        return [m for m in by_name[wrapper]['members'] if m['name'] == 'data'][0]['type']
    for case, name, typ in [('mux', '__org.chardevd_max-frontends', 'int')] + [('socket', n, t) for n, t in CONSOLE_MEMBERS]:
        by_name[data_of(case)]['members'].append({'name': name, 'default': None, 'type': typ})
    sock = by_name[data_of('socket')]
    addr = [m for m in sock['members'] if m['name'] == 'addr'][0]['type']
    unix_wrapper = [v for v in by_name[addr]['variants'] if v['case'] == 'unix'][0]['type']
    unix = [m for m in by_name[unix_wrapper]['members'] if m['name'] == 'data'][0]['type']
    for n in ['__org.chardevd_mode', '__org.chardevd_owner', '__org.chardevd_group']:
        by_name[unix]['members'].append({'name': n, 'default': None, 'type': 'str'})
    # Every backend's common options (ChardevCommon, flattened into each
    # kind's data): QEMU 11.0's logtimestamp, and the log's rotation.
    for e in schema:
        ms = e.get('members', [])
        names = [m.get('name') for m in ms]
        if e.get('meta-type') == 'object' and 'logappend' in names:
            i = names.index('logappend') + 1
            ms[i:i] = [{'name': n, 'default': None, 'type': t} for n, t in COMMON_MEMBERS]
    want = set()

    def visit(name):
        if name in want:
            return
        want.add(name)
        e = by_name[name]
        for k in ('arg-type', 'ret-type', 'element-type'):
            if k in e:
                visit(e[k])
        for m in e.get('members', []):
            if 'type' in m:
                visit(m['type'])
        for v in e.get('variants', []):
            visit(v['type'])

    for e in EXTENSION_ENUMS:
        by_name[e['name']] = e
        want.add(e['name'])
    for n in COMMANDS + EVENTS + ['[str]']:
        visit(n)
    out = [e for e in schema if e['name'] in want] + EXTENSION_ENUMS
    with open(DST, 'w') as f:
        f.write('[\n' + ',\n'.join(json.dumps(e) for e in out) + '\n]\n')
    print(f'{DST}: {len(out)} entities', file=sys.stderr)

main()
