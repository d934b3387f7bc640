"""Stands in for the pip bootstrap script ansible-test downloads into each
sanity venv (from a host of its own, outside the package index): the same job
done with the interpreter's own ensurepip, then `pip install ARGS` for the
packages ansible-test asked for. scripts/test.sh and the Ansible tests place it
where ansible-test looks for its cached copy, under a HOME of their own."""

import ensurepip
import runpy
import sys

ensurepip.bootstrap(upgrade=True)
sys.argv = ['pip', 'install'] + sys.argv[1:]
runpy.run_module('pip', run_name='__main__', alter_sys=True)
