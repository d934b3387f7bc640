#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: archy-gate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (GPL, as Ansible is: these plugins run inside it and import it; the launcher keeps its own license)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: gate
short_description: Run the archy-gate lifecycle gate on an Archy node
version_added: 0.1.0
description:
  - Uploads the archy-gate bundle to the node (skipped when C(launcher verify --sha256) already
    passes there), runs it detached with the password on standard input, follows the run with
    C(launcher wait), fetches the run dir as plain files, and returns the verdict, the test counts
    and the failing tests.
  - All of it runs on the controller (an action plugin, as C(ansible.builtin.raw) and
    C(ansible.builtin.script) do); the node needs no Python, only a POSIX shell, C(tar) and SFTP
    or SCP for the upload.
  - A node whose preflight finds it not ready (exit 4 of C(launcher run)) comes back skipped,
    with the reason; nothing ran there.
  - This file documents the action plugin; run as a module on a node, it fails.
options:
  bundle:
    description: The bundle file (C(result/archy-gate)) on the controller.
    type: path
    required: true
  sha256:
    description:
      - "The bundle's sha256 (from C(SHA256SUMS)): the pin the node checks."
      - Computed from O(bundle) on the controller when not given.
    type: str
  password:
    description:
      - The node's password (from a vaulted variable). It goes to the node only on the standard
        input of C(launcher run --password-stdin); never on a command line. Set C(no_log) on the task.
    type: str
    required: true
  remote_path:
    description: Where the bundle is put on the node; its directory is made private to the SSH user first.
    type: str
    default: /var/tmp/archy-gate-fleet/archy-gate
  iterations:
    description: How many times the gate runs.
    type: int
    default: 1
  allow_destructive:
    description: Run the gate's destructive tests too.
    type: bool
    default: false
  rpc_host:
    description: The node's RPC address as the gate on the node reaches it.
    type: str
    default: 127.0.0.1
  role:
    description: The node's role in the fleet, written beside its fetched run for C(launcher fleet report --from-runs).
    type: str
    default: fleet
    choices: [primary, fleet, tester, dev]
  fetch_to:
    description:
      - The controller directory the run is fetched into, as C(FETCH_TO/INVENTORY_HOSTNAME/), with the
        controller's own facts in C(FETCH_TO/INVENTORY_HOSTNAME.json).
      - C(launcher fleet report --from-runs FETCH_TO) renders the fleet's reports from it.
    type: path
    required: true
  run_id:
    description: The run's id on the node.
    type: str
  wait_timeout:
    description: Seconds to follow the run before giving up.
    type: int
    default: 7200
author:
  - archy-gate maintainers (@archipelago-labs)
notes:
  - Check mode is not supported.
'''

EXAMPLES = r'''
- name: Run the gate
  archy.gate.gate:
    bundle: result/archy-gate
    password: "{{ archy_gate_password }}"
    iterations: 5
    fetch_to: "{{ playbook_dir }}/runs"
  no_log: true
'''

RETURN = r'''
verdict:
  description: How the gate ended (passed, failed, interrupted, error) or not-ready.
  returned: always
  type: str
  sample: passed
run_id:
  description: The run's id on the node.
  returned: when the run started
  type: str
tests:
  description: Test counts, as the node's run record has them.
  returned: when the run ended
  type: dict
  sample: {"passed": 12, "failed": 0, "skipped": 1}
failing:
  description: The failing tests' names.
  returned: when the run ended
  type: list
  elements: str
uploaded:
  description: Whether the bundle was uploaded (false when the node already had it).
  returned: always
  type: bool
fetched_to:
  description: The controller directory the run dir was fetched into.
  returned: when the run ended
  type: str
refused:
  description: Entries of the node's run dir that were not kept (not plain files), each with why.
  returned: when the run ended
  type: list
  elements: str
skip_reason:
  description: Why the node was not ready (its failing preflight checks).
  returned: when skipped
  type: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.archy.gate.plugins.module_utils.gate_spec import ARGUMENT_SPEC


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=False)
    module.fail_json(msg='archy.gate.gate runs on the controller, as an action plugin: '
                         'this module stub only documents it (is the archy.gate collection installed?)')


if __name__ == '__main__':
    main()
