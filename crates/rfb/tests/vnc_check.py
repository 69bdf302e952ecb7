#!/usr/bin/env python3
"""Check the rfb crate's server against real VNC clients: vncdotool (PyPI) and, if installed,
Debian's vncsnapshot.

Runs the `vnc_text` example (a text console that echoes typed keys) and checks what the clients
see. Optional: needs `pip install vncdotool` (and Pillow, which it pulls in).

    cargo build -p rfb --example vnc_text
    python3 crates/rfb/tests/vnc_check.py [target/debug/examples/vnc_text]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from PIL import Image
from vncdotool import api

CELL_W, CELL_H = 8, 16


def start(binary, display, password=None):
    args = [binary, f"127.0.0.1:{display}"] + ([password] if password else [])
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("listening on"), line
    return p


def lit(img, col, row):
    """Number of non-black pixels in a text cell."""
    n = 0
    for y in range(row * CELL_H, (row + 1) * CELL_H):
        for x in range(col * CELL_W, (col + 1) * CELL_W):
            if sum(img.getpixel((x, y))[:3]) > 60:
                n += 1
    return n


def capture(client, path):
    client.refreshScreen()
    client.captureScreen(path)
    return Image.open(path).convert("RGB")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/examples/vnc_text"
    tmp = tempfile.mkdtemp()
    display = 40 + os.getpid() % 50
    p = start(binary, display)
    try:
        c = api.connect(f"127.0.0.1::{5900 + display}")
        img = capture(c, f"{tmp}/a.png")
        assert img.size == (640, 400), img.size
        # "login: " on row 2: six lit cells, then a blank one.
        assert all(lit(img, i, 2) > 0 for i in range(6)), "login: not drawn"
        assert lit(img, 7, 2) <= CELL_W * 2, "only the cursor after login:"
        for ch in "root":
            c.keyPress(ch)
        c.keyPress("enter")
        time.sleep(0.3)
        img = capture(c, f"{tmp}/b.png")
        assert all(lit(img, i, 2) > 0 for i in range(7, 11)), "typed text not echoed"
        c.keyPress("ctrl-alt-2")
        time.sleep(0.3)
        img = capture(c, f"{tmp}/c.png")
        assert lit(img, 1, 4) > 0, "Ctrl-Alt-2 not seen as a console switch"
        c.disconnect()
        if shutil.which("vncsnapshot"):
            out = subprocess.run(
                ["vncsnapshot", "-allowblank", f"127.0.0.1:{display}", f"{tmp}/s.jpg"],
                capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            assert Image.open(f"{tmp}/s.jpg").size == (640, 400)
            print("vncsnapshot: ok")
    finally:
        p.kill()
        p.wait()

    p = start(binary, display, password="sekrit")
    try:
        c = api.connect(f"127.0.0.1::{5900 + display}", password="sekrit")
        assert capture(c, f"{tmp}/d.png").size == (640, 400)
        c.disconnect()
        try:
            bad = api.connect(f"127.0.0.1::{5900 + display}", password="wrong", timeout=5)
            bad.refreshScreen()
            raise AssertionError("wrong password accepted")
        except AssertionError:
            raise
        except Exception:
            pass
    finally:
        p.kill()
        p.wait()
        api.shutdown()
    shutil.rmtree(tmp)
    print("vncdotool: ok")


if __name__ == "__main__":
    main()
