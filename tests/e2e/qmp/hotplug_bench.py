#!/usr/bin/env python3
"""One NVDIMM hotplug latency sample, run inside L1 by bench/hotplug-l1.sh.

  hotplug_bench.py --vmm NAME --sock PATH --console FILE --workdir DIR

Connects with `qemu.qmp`, waits for the guest's BH-WAITING line, object-adds a 1G
memory-backend-file and device_adds an unlabelled nvdimm. Clock: time.monotonic() in this
process (L1), started when the device_add reply has been received; stopped when the guest's
BH-REGION line (region1 in /sys/bus/nd/devices) and BH-PMEM line (/dev/pmem1 block device,
created by the kernel for an unlabelled NVDIMM) appear in the serial console file, which this
process reads (file kept open) every 1 ms. The guest polls every 5 ms without forking. Prints
  BENCH vmm=NAME ok=1 region=S pmem=S guest_region_to_pmem=S polls=N
"""
import argparse
import asyncio
import sys
import time

from qemu.qmp import QMPClient


FILES, TEXT = {}, {}


async def wait_marker(path, marker, timeout, interval=0.001):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        if path not in FILES:
            try:
                FILES[path] = open(path, "rb")  # kept open: a poll is one read() call
            except FileNotFoundError:
                await asyncio.sleep(interval)
                continue
        TEXT[path] = text = TEXT.get(path, "") + FILES[path].read().decode("utf-8", "replace")
        i = text.find(marker)
        if i >= 0:
            return time.monotonic(), text[i:].split("\n", 1)[0].strip()
        await asyncio.sleep(interval)
    return None, ""


def field(line, key):
    for tok in line.split():
        if tok.startswith(key + "="):
            return tok.split("=", 1)[1]
    return ""


async def main(a):
    qmp = QMPClient("bench")
    deadline = time.monotonic() + 90
    while True:
        try:
            await qmp.connect(a.sock)
            break
        except Exception:  # noqa: BLE001 (not listening yet)
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    t, _ = await wait_marker(a.console, "BH-WAITING", 300, 0.05)
    if t is None:
        print(f"BENCH vmm={a.vmm} ok=0 why=no-BH-WAITING", flush=True)
        return
    await qmp.execute("object-add", {"qom-type": "memory-backend-file", "id": "mem3", "share": True,
                                     "mem-path": f"{a.workdir}/nv3.img", "size": 1 << 30})
    await qmp.execute("device_add", {"driver": "nvdimm", "id": "nvdimm2", "memdev": "mem3"})
    t0 = time.monotonic()
    t1, l1 = await wait_marker(a.console, "BH-REGION", 120)
    t2, l2 = await wait_marker(a.console, "BH-PMEM", 120)
    # the markers were timed as soon as their first bytes arrived; read the complete lines now
    await wait_marker(a.console, "BH-DONE", 10, 0.05)
    lines = {ln.split()[0]: ln for ln in TEXT.get(a.console, "").replace("\r", "").split("\n")
             if ln.startswith("BH-")}
    l1, l2 = lines.get("BH-REGION", ""), lines.get("BH-PMEM", "")
    if t1 is None or t2 is None:
        print(f"BENCH vmm={a.vmm} ok=0 why=no-region-or-pmem region={t1} pmem={t2}", flush=True)
    else:
        g = float(field(l2, "up") or 0) - float(field(l1, "up") or 0)
        print(f"BENCH vmm={a.vmm} ok=1 region={t1 - t0:.4f} pmem={t2 - t0:.4f} "
              f"guest_region_to_pmem={g:.3f} polls={field(l1, 'polls')}", flush=True)
    try:
        await qmp.disconnect()
    except Exception:  # noqa: BLE001
        pass


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    for k in ("vmm", "sock", "console", "workdir"):
        ap.add_argument("--" + k, required=True)
    args = ap.parse_args()
    asyncio.run(main(args))
    sys.exit(0)
