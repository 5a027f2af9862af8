#!/usr/bin/env python3
"""The built-in attention registry must list exactly the variant files in attention/.

Usage: check_registry.py LRA_EXE ATTENTION_DIR

Fails when a file was added or removed without the build noticing (the registry is generated
from the directory at configure time), or when a file does not define the descriptor its name
promises.
"""
import os
import re
import subprocess
import sys

def main():
    exe, attn_dir = sys.argv[1], sys.argv[2]
    env = {k: v for k, v in os.environ.items() if k != 'LRA_PLUGIN_PATH'}
    out = subprocess.run([exe, 'list', 'attention', '--names'], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    files = sorted(f[:-2] for f in os.listdir(attn_dir) if f.endswith('.c'))
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(('PASS: ' if ok else 'FAIL: ') + what)
        passed, failed = passed + ok, failed + (not ok)

    check(sorted(out) == files,
          f'registry {sorted(out)} equals the files in attention/ {files}')
    check(len(set(out)) == len(out), 'variant names are unique')
    for name in files:
        with open(os.path.join(attn_dir, name + '.c'), encoding='utf-8') as f:
            text = f.read()
        check(re.search(r'const\s+lra_attention\s+lra_attn_' + name + r'\s*=', text) is not None,
              f'attention/{name}.c defines lra_attn_{name}')
        check(f'LRA_ATTENTION_EXPORT(lra_attn_{name})' in text,
              f'attention/{name}.c can be built as a loadable plugin')
    print(f'{passed} passed, {failed} failed')
    sys.exit(1 if failed else 0)

main()
