# -*- coding: utf-8 -*-
# Copyright: archy-gate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (GPL, as Ansible is: these plugins run inside it and import it; the launcher keeps its own license)
"""archy.gate.gate, on the controller: the node needs no Python.

Every step is a plain command over the task's own connection (as
ansible.builtin.raw runs one) or a file transfer: the bundle's dir made private,
``launcher verify --sha256`` (the upload skipped when it passes), the upload by
``put_file`` and an atomic rename, ``launcher run --detach --json
--password-stdin`` with the password on standard input, ``launcher wait`` until
the run ends, and the run dir as a tar stream, unpacked here as plain data:
regular files and directories with plain names, each created exclusively
without following links; anything else is named in ``refused`` and not kept.
What the node sends back is node data: capped, and parsed as JSON only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shlex
import shutil
import tarfile
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.archy.gate.plugins.module_utils.gate_spec import ARGUMENT_SPEC

# The launcher's exit statuses (a contract): 4 is "preflight failed: not ready".
EXIT_PREFLIGHT = 4
# The fleet's caps on a node's run dir (launcher/src/fleet/answer.rs).
RUN_DIR_BYTES = 64 << 20
RUN_DIR_ENTRIES = 1000
JSON_BYTES = 1 << 20
KEPT_EXTENSIONS = ('json', 'log', 'tap', 'xml', 'txt')
PLAIN = re.compile(r'^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$')
NODE_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')
FINAL_STATES = ('passed', 'failed', 'interrupted', 'error', 'lost')
REFUSED = 3

# The fleet's own check of the bundle's dir (launcher/src/fleet/remote_dir.rs):
# every dir on the way owned by root or the ssh user and not writable by others
# unless sticky; the last one ours alone, mode 0700.
PRIVATE_DIR_SCRIPT = r'''umask 077
me=$(id -u)
refuse() { echo "$*"; exit 3; }
trusted() { [ "$1" = 0 ] || [ "$1" = "$me" ]; }
p=/
for c in %(names)s; do
  st=$(stat -c '%%u %%a' -- "$p") || refuse "cannot look at $p"
  set -- $st
  trusted "$1" || refuse "$p is owned by uid $1, not by root or you (uid $me)"
  [ $((0$2 & 022)) = 0 ] || [ $((0$2 & 01000)) != 0 ] || refuse "$p has mode $2: others can write it and it is not sticky"
  if [ "$p" = / ]; then n=/$c; else n=$p/$c; fi
  [ -L "$n" ] && refuse "$n is a symlink: another user may have planted it"
  [ -e "$n" ] || mkdir -m 700 -- "$n" 2>/dev/null || [ -d "$n" ] || refuse "cannot create $n"
  [ -L "$n" ] && refuse "$n is a symlink: another user may have planted it"
  [ -d "$n" ] || refuse "$n is not a directory"
  p=$n
done
st=$(stat -c '%%u %%a' -- "$p") || refuse "cannot look at $p"
set -- $st
[ "$1" = "$me" ] || refuse "$p is owned by uid $1, not by you (uid $me)"
[ $((0$2 & 022)) = 0 ] || refuse "$p has mode $2: others can write it"
chmod 700 -- "$p" || refuse "cannot chmod 700 $p"
echo 'archy-gate: remote dir ok'
'''


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _tame(text, limit=2000):
    """A node's string for a result: control characters escaped, shortened."""
    text = to_text(text, errors='surrogate_or_replace')
    out = ''.join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[:limit] + '…'


def _node_json(raw, what):
    """A node's JSON answer, under the cap, or an error naming what it was."""
    if len(raw) > JSON_BYTES:
        raise AnsibleActionFail('the node answered %s with more than %d bytes' % (what, JSON_BYTES))
    try:
        value = json.loads(to_text(raw, errors='surrogate_or_strict'))
    except ValueError as e:
        raise AnsibleActionFail('the node answered %s with no JSON: %s' % (what, _tame(str(e))))
    if not isinstance(value, dict):
        raise AnsibleActionFail('the node answered %s with JSON that is not an object' % what)
    return value


def _unpack(data, into):
    """The run dir's tar stream, kept as plain data in `into` (made afresh)."""
    if len(data) > RUN_DIR_BYTES + (RUN_DIR_ENTRIES + 20) * 1024:
        raise AnsibleActionFail('the run dir holds more than the fleet keeps (64 MiB)')
    if os.path.lexists(into):
        shutil.rmtree(into)
    os.mkdir(into, 0o700)
    kept, refused, total = [], [], 0
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:') as archive:
        for count, member in enumerate(archive):
            if count >= RUN_DIR_ENTRIES:
                raise AnsibleActionFail('the run dir has more than %d entries' % RUN_DIR_ENTRIES)
            rel = member.name
            while rel.startswith('./'):
                rel = rel[2:]
            rel = rel.rstrip('/')
            if rel in ('', '.'):
                continue
            shown = _tame(rel, 200)
            parts = rel.split('/')
            if len(parts) > 2 or not all(PLAIN.match(p) for p in parts):
                refused.append('%s: not a plain name, not kept' % shown)
                continue
            if member.isdir():
                if len(parts) == 1:
                    if not os.path.isdir(os.path.join(into, rel)):
                        os.mkdir(os.path.join(into, rel), 0o700)
                else:
                    refused.append('%s: a directory too deep, not kept' % shown)
                continue
            if not member.isreg():
                refused.append('%s: not a regular file, not kept' % shown)
                continue
            if rel.rsplit('.', 1)[-1] not in KEPT_EXTENSIONS or '.' not in parts[-1]:
                refused.append('%s: not a record, log or report, not kept' % shown)
                continue
            total += member.size
            if total > RUN_DIR_BYTES:
                raise AnsibleActionFail('the run dir holds more than the fleet keeps (64 MiB)')
            if len(parts) == 2:
                parent = os.path.join(into, parts[0])
                if not os.path.isdir(parent) or os.path.islink(parent):
                    os.mkdir(parent, 0o700)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0)
            try:
                fd = os.open(os.path.join(into, rel), flags, 0o600)
            except FileExistsError:
                refused.append('%s: sent twice, the second not kept' % shown)
                continue
            with os.fdopen(fd, 'wb') as out:
                out.write(archive.extractfile(member).read())
            kept.append(rel)
    return kept, refused


class ActionModule(ActionBase):

    TRANSFERS_FILES = True
    _requires_connection = True
    _supports_check_mode = False
    _supports_async = False

    def _run(self, command, in_data=None):
        """A command on the node over the task's connection: (rc, stdout, stderr) as bytes."""
        rc, out, err = self._connection.exec_command(command, in_data=in_data, sudoable=False)
        return rc, out, err

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # no remote tmp: nothing of ours runs on the node but the launcher
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        name = task_vars.get('inventory_hostname', '')
        if not NODE_NAME.match(name):
            raise AnsibleActionFail('inventory host %r: a node name must start with a letter or digit, '
                                    'then letters, digits, "-", "_" and "." (at most 64)' % name)
        password = args['password']
        if '\n' in password or '\r' in password:
            raise AnsibleActionFail('the password holds a line break, which the launcher refuses')
        bundle = args['bundle']
        sha = args['sha256'] or _sha256(bundle)
        remote = args['remote_path']
        launcher = shlex.quote(remote)
        fetch_to = args['fetch_to']
        run_id = args['run_id'] or 'ansible-%s-%s' % (time.strftime('%Y%m%dT%H%M%S'), name)
        facts = dict(role=args['role'], iterations=args['iterations'],
                     ssh=str(task_vars.get('ansible_host', name)),
                     bundle=bundle, bundle_sha256=sha, bundle_size=os.path.getsize(bundle),
                     started_unix=time.time())
        result.update(uploaded=False, changed=False)

        # The bundle's dir, private to the ssh user before anything there runs.
        names = ' '.join(shlex.quote(c) for c in os.path.dirname(remote).split('/') if c)
        rc, out, err = self._run(PRIVATE_DIR_SCRIPT % dict(names=names))
        if rc != 0 or b'archy-gate: remote dir ok' not in out:
            raise AnsibleActionFail('refusing the node\'s bundle dir: %s' % _tame(out + err))

        # Upload, unless the node's copy is this bundle already.
        verify = '%s verify --sha256 %s' % (launcher, shlex.quote(sha))
        if self._run(verify)[0] != 0:
            part = remote + '.part'
            self._connection.put_file(bundle, part)
            rc, out, err = self._run('chmod 700 %s && mv -f %s %s && %s' % (
                shlex.quote(part), shlex.quote(part), launcher, verify))
            if rc != 0:
                raise AnsibleActionFail('the uploaded bundle does not verify: %s' % _tame(out + err))
            result.update(uploaded=True, changed=True)

        # Start it detached; the password goes on stdin only.
        command = '%s run --detach --json --password-stdin --sha256 %s --run-id %s --iterations %d --host %s' % (
            launcher, shlex.quote(sha), shlex.quote(run_id), args['iterations'], shlex.quote(args['rpc_host']))
        if args['allow_destructive']:
            command += ' --allow-destructive'
        rc, out, err = self._run(command, in_data=(password + '\n').encode())
        node_dir = os.path.join(fetch_to, name)
        if not os.path.isdir(fetch_to):
            os.makedirs(fetch_to, 0o700)
        if rc == EXIT_PREFLIGHT:
            answer = _node_json(out, 'run --detach --json')
            checks = (answer.get('preflight') or {}).get('checks') or []
            reasons = ['%s: %s' % (_tame(c.get('id')), _tame(c.get('reason')))
                       for c in checks if isinstance(c, dict) and c.get('verdict') == 'fail']
            if os.path.lexists(node_dir):
                shutil.rmtree(node_dir)
            os.mkdir(node_dir, 0o700)
            with open(os.path.join(node_dir, 'start.json'), 'x') as f:
                json.dump(answer, f)
            self._write_facts(fetch_to, name, facts)
            result.update(skipped=True, verdict='not-ready',
                          skip_reason='not ready: %s' % ('; '.join(reasons) or 'preflight failed'))
            return result
        if rc != 0:
            raise AnsibleActionFail('the run did not start (exit %d): %s' % (rc, _tame(err.strip()[-2000:])))
        result['run_id'] = run_id

        # Follow it: `wait` blocks on the node, a minute at a time.
        deadline = time.time() + args['wait_timeout']
        while True:
            rc, out, err = self._run('%s wait %s --json --timeout 60' % (launcher, shlex.quote(run_id)))
            record = _node_json(out, 'wait --json') if out.strip() else {}
            if record.get('state') in FINAL_STATES:
                break
            if time.time() > deadline:
                raise AnsibleActionFail('run %s had not ended after %ds' % (run_id, args['wait_timeout']))
            if not record:
                time.sleep(2)
        facts['ended_unix'] = time.time()

        # Fetch the run dir as plain data.
        run_dir = '%s/runs/%s' % (record.get('workdir', ''), run_id)
        rc, out, err = self._run('cd %s && tar cf - .' % shlex.quote(run_dir))
        kept, refused = _unpack(out, node_dir)
        self._write_facts(fetch_to, name, facts)

        tests = record.get('tests') or {}
        counts = dict((k, int(tests.get(k) or 0)) for k in ('passed', 'failed', 'skipped'))
        failing = [_tame(t) for t in (tests.get('failing') or [])][:500]
        verdict = _tame(record.get('state'), 20)
        result.update(verdict=verdict, tests=counts, failing=failing, fetched_to=node_dir,
                      kept=kept, refused=refused)
        if verdict != 'passed':
            result['failed'] = True
            result['msg'] = 'the gate %s on %s: %s' % (
                verdict, name, '; '.join(failing) or _tame(record.get('message') or ''))
        return result

    @staticmethod
    def _write_facts(fetch_to, name, facts):
        """The controller's own facts beside the node's dir, for --from-runs."""
        path = os.path.join(fetch_to, name + '.json')
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(facts, f)
        os.replace(tmp, path)
