#!/usr/bin/env python3
"""pmvm's -vnc seen by a real VNC client (vncdotool, PyPI). Optional: `pip install vncdotool`.

Boots the echo guest (tests/tiny/echo.S) with `-vnc 127.0.0.1:N -S`, and with vncdotool:
Ctrl-Alt-2, `info status` (paused), `cont`; Ctrl-Alt-1, the guest's banner, typed text echoed;
Ctrl-Alt-2 `quit`. Text is found by matching screen cells against pmvm's console font
(harness/vncfont.h, kept equal to rfb's glyphs by crates/rfb/tests/font_header.rs).

    cargo build -p pmvm
    python3 crates/pmvm/tests/vnc_check.py [target/debug/pmvm]
"""
import os
import re
import subprocess
import sys
import tempfile
import time

from vncdotool import api

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def font():
    text = open(os.path.join(REPO, "harness", "vncfont.h")).read()
    rows = re.findall(r"\{((?:0x[0-9a-f]{2}, ){7}0x[0-9a-f]{2})\}", text)
    assert len(rows) == 95, len(rows)
    return {chr(0x20 + i): [int(b, 16) for b in r.split(", ")] for i, r in enumerate(rows)}


FONT = font()


def shows(img, text):
    """Whether `text` is on the screen, cell-aligned (ink = not black)."""
    w, h = img.size
    px = img.convert("RGB").load()
    cols = len(text)
    for cy in range(h // 16):
        for cx in range(w // 8 - cols + 1):
            ok = True
            for i, ch in enumerate(text):
                g = FONT.get(ch, FONT["?"])
                for gy in range(16):
                    for gx in range(8):
                        ink = sum(px[(cx + i) * 8 + gx, cy * 16 + gy]) > 0
                        if ink != bool((g[gy // 2] >> gx) & 1):
                            ok = False
                            break
                    if not ok:
                        break
                if not ok:
                    break
            if ok:
                return True
    return False


def wait_for(client, text, timeout=20):
    t = time.time()
    while time.time() - t < timeout:
        client.refreshScreen()
        if shows(client.screen, text):
            print(f"ok: {text!r} on the screen")
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared")


def type_line(client, line):
    for c in line:
        client.keyPress(c)
    client.keyPress("enter")


def main():
    pmvm = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "target", "debug", "pmvm")
    work = tempfile.mkdtemp()
    elf = os.path.join(work, "echo.elf")
    subprocess.run(["gcc", "-nostdlib", "-static", "-no-pie", "-Wl,-Ttext=0x200000",
                    "-Wl,--build-id=none", "-o", elf, os.path.join(REPO, "tests", "tiny", "echo.S")],
                   check=True)
    display = 4000 + os.getpid() % 20000
    p = subprocess.Popen([pmvm, "-m", "64M", "-S", "-kernel", elf, "-vnc", f"127.0.0.1:{display}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        client = api.connect(f"127.0.0.1::{5900 + display}")
        client.keyPress("ctrl-alt-2")
        wait_for(client, "(qemu) ")
        type_line(client, "info status")
        wait_for(client, "VM status: paused")
        type_line(client, "cont")
        client.keyPress("ctrl-alt-1")
        wait_for(client, "PMVM-VNC-ECHO ready")
        type_line(client, "Hello, VNC!")
        wait_for(client, "Hello, VNC!")
        client.keyPress("ctrl-alt-2")
        type_line(client, "quit")
        client.disconnect()
        assert p.wait(timeout=20) == 0, p.stderr.read()
        print("vnc_check: all ok")
    finally:
        if p.poll() is None:
            p.kill()
        api.shutdown()


if __name__ == "__main__":
    main()
