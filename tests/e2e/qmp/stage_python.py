#!/usr/bin/env python3
"""Stage a minimal Python + the `qemu.qmp` package for L1 (which has no Python).

Usage: stage_python.py DEST [SCRIPT...]

Runs on the host with the python3 that has `qemu.qmp` (scripts/deps.sh installs it). DEST
becomes a Python home: DEST/bin/python3 (the host interpreter, copied; the harness copies its
shared libraries), DEST/lib/pythonX.Y/ with exactly the standard-library modules that importing
`qemu.qmp` and the given SCRIPTs pulls in (traced here, in a child interpreter, so a different
Python version on another machine gets its own list), their compiled `.pyc` (importing from
source under TCG costs seconds), the extension modules among them, and
DEST/pkgs/qemu/. In L1: PYTHONHOME=DEST PYTHONPATH=DEST/pkgs DEST/bin/python3 ...

Left out on purpose: tests, idlelib, tkinter, ensurepip, config-*, other site-packages, _ssl
(asyncio imports ssl optionally; leaving it out avoids libssl/libcrypto).
"""
import importlib.util
import os
import shutil
import subprocess
import sys

# Modules imported lazily at run time (error paths, encodings) that a plain import misses.
EXTRA = ["encodings.ascii", "encodings.latin_1", "encodings.utf_8_sig", "traceback",
         "linecache", "tokenize", "asyncio.unix_events", "selectors", "json", "socket",
         "argparse", "time", "struct", "select", "errno", "signal"]
SKIP_EXT = ("_hashlib",)


def pick_interpreter() -> str:
    """The interpreter to stage: a distribution python3 of the same version as this one if it
    has libpython built in (Debian's is 6.8 MB, stripped), else this one (pyenv's links a 23 MB
    libpython with debug info, which the harness would copy)."""
    mine = os.path.realpath(sys.executable)
    cands = ["/usr/bin/python%d.%d" % sys.version_info[:2], mine]
    for c in cands:
        if not os.access(c, os.X_OK):
            continue
        ldd = subprocess.run(["ldd", c], capture_output=True, text=True).stdout
        if "libpython" not in ldd:
            return os.path.realpath(c)
    return mine

TRACE = r"""
import runpy, sys, importlib, sysconfig, os
print(sys.version_info[0], sys.version_info[1])
print(os.path.realpath(sysconfig.get_paths()["stdlib"]))
print(os.path.realpath(sysconfig.get_config_var("DESTSHARED") or sysconfig.get_paths()["stdlib"] + "/lib-dynload"))
for m in sys.argv[1].split(","):
    importlib.import_module(m)
for s in sys.argv[2:]:
    # import the script as a module without running main (guarded by __name__)
    runpy.run_path(s, run_name="traced")
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if f:
        print(f)
"""


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    dest = os.path.abspath(sys.argv[1])
    scripts = sys.argv[2:]
    import qemu.qmp  # noqa: F401  (fails loudly if missing: run scripts/deps.sh)
    qemu_pkg = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(qemu.qmp.__file__))))
    py = pick_interpreter()
    env = dict(os.environ)
    if py != os.path.realpath(sys.executable):
        env["PYTHONPATH"] = qemu_pkg  # the interpreter we stage may not have qemu.qmp itself
    out = subprocess.run([py, "-c", TRACE, ",".join(["qemu.qmp"] + EXTRA)] + scripts,
                         check=True, capture_output=True, text=True, env=env).stdout.split("\n")
    major, minor = out[0].split()
    stdlib, dynload, files = out[1], out[2], [f for f in out[3:] if f]
    ver = "python%s.%s" % (major, minor)
    libdir = os.path.join(dest, "lib", ver)
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.makedirs(os.path.join(dest, "bin"))
    shutil.copy2(py, os.path.join(dest, "bin", "python3"))
    n = 0
    for f in sorted(set(files)):
        f = os.path.realpath(f)
        if not f.startswith(stdlib + os.sep) or "site-packages" in f:
            continue
        rel = os.path.relpath(f, stdlib)
        if f.endswith(".so"):
            if os.path.basename(f).startswith(SKIP_EXT):
                continue
        elif not f.endswith(".py"):
            continue
        os.makedirs(os.path.dirname(os.path.join(libdir, rel)), exist_ok=True)
        shutil.copy2(f, os.path.join(libdir, rel))
        n += 1
        if f.endswith(".py"):
            pyc = importlib.util.cache_from_source(f)
            if os.path.exists(pyc):
                d = os.path.join(libdir, os.path.relpath(pyc, stdlib))
                os.makedirs(os.path.dirname(d), exist_ok=True)
                shutil.copy2(pyc, d)
    # the lib-dynload directory must exist for sys.path even if it ends up empty
    os.makedirs(os.path.join(libdir, os.path.relpath(dynload, stdlib)), exist_ok=True)
    site = os.path.join(dest, "pkgs")  # PYTHONPATH (Debian's site.py ignores site-packages)
    shutil.copytree(os.path.join(qemu_pkg, "qemu"), os.path.join(site, "qemu"),
                    ignore=shutil.ignore_patterns("*.opt-*.pyc", "tests"))
    print(f"stage_python: {py} {major}.{minor}: {n} stdlib files, "
          f"qemu.qmp from {qemu_pkg} -> {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
