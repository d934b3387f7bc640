# -*- coding: utf-8 -*-
# Copyright: archy-gate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (GPL, as Ansible is: these plugins run inside it and import it; the launcher keeps its own license)
"""The one argument spec of archy.gate.gate: the module stub's documentation
and the action plugin's validation both read it, so they cannot drift."""

from __future__ import annotations

ARGUMENT_SPEC = dict(
    bundle=dict(type='path', required=True),
    sha256=dict(type='str'),
    password=dict(type='str', required=True, no_log=True),
    remote_path=dict(type='str', default='/var/tmp/archy-gate-fleet/archy-gate'),
    iterations=dict(type='int', default=1),
    allow_destructive=dict(type='bool', default=False),
    rpc_host=dict(type='str', default='127.0.0.1'),
    role=dict(type='str', default='fleet', choices=['primary', 'fleet', 'tester', 'dev']),
    fetch_to=dict(type='path', required=True),
    run_id=dict(type='str'),
    wait_timeout=dict(type='int', default=7200),
)
