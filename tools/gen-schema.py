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
    # Downstream-extension members: a mux's frontend limit.
    backend = [m for m in by_name[by_name['chardev-add']['arg-type']]['members'] if m['name'] == 'backend'][0]
    union = by_name[backend['type']]
    for case, name, typ in [('mux', '__org.chardevd_max-frontends', 'int')]:
        wrapper = [v for v in union['variants'] if v['case'] == case][0]['type']
        data = [m for m in by_name[wrapper]['members'] if m['name'] == 'data'][0]['type']
        by_name[data]['members'].append({'name': name, 'default': None, 'type': typ})
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

    for n in COMMANDS + EVENTS + ['[str]']:
        visit(n)
    out = [e for e in schema if e['name'] in want]
    with open(DST, 'w') as f:
        f.write('[\n' + ',\n'.join(json.dumps(e) for e in out) + '\n]\n')
    print(f'{DST}: {len(out)} entities', file=sys.stderr)

main()
