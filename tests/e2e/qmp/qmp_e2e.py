#!/usr/bin/env python3
"""End-to-end QMP checks with the real `qemu.qmp` client (PyPI), run inside L1 by qmp.sh.

  qmp_e2e.py run --vmm pmvm|qemu --sock PATH [--tcp HOST:PORT] --console FILE --workdir DIR
                 --out DEVICES.json --pid PID [--full]
  qmp_e2e.py compare QEMU.json PMVM.json

`run` drives a VM started with one cold labelled NVDIMM (`nv1`/`mem1`, 1G backend, 128K
labels), `-m 512M,slots=S,maxmem=3G` with room for exactly two memory devices (QEMU: S=2;
pmvm: S=3, as it counts the RAM as one slot user, the seed's rule), and an L2 script (qmp.sh) that prints HP-WAITING, waits
for region1, creates an fsdax namespace (HP-NAMESPACE-OK), prints HP-DONE, then TICK lines
every second until the power button is pressed (PWR-BUTTON) and powers off.
Steps: negotiate, query-memory-devices (QEMU's fields), past-maxmem refusal, hot-add a labelled
NVDIMM (object-add + device_add), guest sees region1 and /dev/pmem1, query-memory-devices,
past-slots refusal. With --full (pmvm): hostile raw-socket clients while a second qemu.qmp
client (TCP if --tcp) keeps working, then system_powerdown (POWERDOWN, guest powers off,
SHUTDOWN). Without --full: `quit`. Prints PASS:/FAIL:/INFO: lines; exit status 0.
"""
import argparse
import asyncio
import json
import sys
import time

from qemu.qmp import ExecuteError, QMPClient

FIELDS = {"id", "addr", "size", "slot", "node", "memdev", "hotplugged", "hotpluggable"}
GIB = 1 << 30
LABEL = 128 << 10
STRICT = True  # False for the QEMU reference: its results are INFO, not PASS/FAIL


def ok(cond, msg):
    tag = ("PASS: " if cond else "FAIL: ") if STRICT else ("INFO: ok: " if cond else "INFO: not ok: ")
    print(tag + msg, flush=True)
    return cond


def info(msg):
    print("INFO: " + msg, flush=True)


class Console:
    """The guest serial console file, re-read as it grows."""

    def __init__(self, path):
        self.path, self.f, self.text = path, None, ""

    def read(self):
        if self.f is None:
            try:
                self.f = open(self.path, "rb")  # kept open: polling must stay cheap under TCG
            except FileNotFoundError:
                return self.text
        self.text += self.f.read().decode("utf-8", "replace")
        return self.text

    async def wait_for(self, marker, timeout, interval=0.002):
        """time.monotonic() when MARKER was first seen, None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if marker in self.read():
                return time.monotonic()
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(interval)


def parse_addr(a):
    if a.startswith("/"):
        return a
    host, port = a.rsplit(":", 1)
    return (host, int(port))


async def connect(name, addr, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        qmp = QMPClient(name)
        try:
            await qmp.connect(parse_addr(addr))
            return qmp
        except Exception:  # the VMM may not listen yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def expect_error(qmp, cmd, args, words, label):
    """Run CMD, expect an ExecuteError whose text contains every word in WORDS."""
    try:
        await qmp.execute(cmd, args)
    except ExecuteError as e:
        good = all(w in str(e) for w in words)
        ok(good, f"{label}: refused: {e.error_class}: {e}")
        return str(e)
    ok(False, f"{label}: {cmd} {args} succeeded")
    return None


def check_fields(dev, label):
    data = dev.get("data", {})
    ok(dev.get("type") == "nvdimm" and set(data) == FIELDS,
       f"{label}: type {dev.get('type')} fields {sorted(data)} (QEMU's: {sorted(FIELDS)})")
    types = {k: type(v).__name__ for k, v in data.items()}
    ok(types == {"id": "str", "addr": "int", "size": "int", "slot": "int", "node": "int",
                 "memdev": "str", "hotplugged": "bool", "hotpluggable": "bool"},
       f"{label}: field types {types}")


async def ticks(con):
    return con.read().count("TICK")


async def running(qmp, label):
    st = await qmp.execute("query-status")
    return ok(st.get("status") == "running" and st.get("running") is True, f"{label}: query-status {st}")


async def hotplug(qmp, con, a):
    ver = await qmp.execute("query-version")
    info(f"{a.vmm}: query-version {json.dumps(ver)}")
    cmds = {c["name"] for c in await qmp.execute("query-commands")}
    need = {"qmp_capabilities", "query-memory-devices", "object-add", "device_add", "system_powerdown"}
    ok(need <= cmds, f"{a.vmm}: query-commands lists {sorted(need)}")
    await running(qmp, f"{a.vmm}: at start")
    devs = await qmp.execute("query-memory-devices")
    info(f"{a.vmm}: query-memory-devices (cold) {json.dumps(devs)}")
    ok(len(devs) == 1, f"{a.vmm}: one memory device at start ({len(devs)})")
    if devs:
        check_fields(devs[0], f"{a.vmm}: cold nv1")
        d = devs[0]["data"]
        ok(d.get("id") == "nv1" and d.get("memdev") == "/objects/mem1" and d.get("hotplugged") is False
           and d.get("slot") == 0 and d.get("size") == GIB - LABEL,
           f"{a.vmm}: nv1 id/memdev/slot/size/hotplugged = {d.get('id')} {d.get('memdev')} "
           f"{d.get('slot')} {d.get('size')} {d.get('hotplugged')}")

    if await con.wait_for("HP-WAITING", 300, 0.05) is None:
        ok(False, f"{a.vmm}: guest never reached its script (HP-WAITING)")
        return None

    # past maxmem (maxmem=3G: 2.5G for devices, 1G used) with a slot free: a 2G NVDIMM
    await qmp.execute("object-add", {"qom-type": "memory-backend-file", "id": "membig", "share": True,
                                     "mem-path": f"{a.workdir}/big.img", "size": 2 * GIB})
    await expect_error(qmp, "device_add", {"driver": "nvdimm", "id": "nvbig", "memdev": "membig"},
                       ["maxmem"] if a.vmm == "pmvm" else [], f"{a.vmm}: device_add past maxmem")
    await running(qmp, f"{a.vmm}: after the maxmem refusal")
    await qmp.execute("object-del", {"id": "membig"})
    left = [d["data"]["id"] for d in await qmp.execute("query-memory-devices")]
    ok(left == ["nv1"], f"{a.vmm}: refused device left no trace ({left})")

    try:
        await qmp.execute("object-add", {"qom-type": "memory-backend-file", "id": "mem3", "share": True,
                                         "mem-path": f"{a.workdir}/nv3.img", "size": GIB})
        await qmp.execute("device_add", {"driver": "nvdimm", "id": "nvdimm2", "memdev": "mem3",
                                         "label-size": LABEL})
    except ExecuteError as e:
        ok(False, f"{a.vmm}: hot-add of a labelled 1G NVDIMM refused: {e.error_class}: {e}")
        return None
    t0 = time.monotonic()
    t1 = await con.wait_for("HP-SEEN", 120)
    if not ok(t1 is not None, f"{a.vmm}: guest sees the hot-added region1 without a reboot"):
        return None
    print(f"HOTPLUG-LATENCY {a.vmm} {t1 - t0:.3f}s (device_add reply -> guest console marker)", flush=True)
    await con.wait_for("HP-DONE", 180, 0.05)
    text = con.read()
    ns_ok = "HP-NAMESPACE-OK" in text
    if a.vmm == "pmvm":
        ok(ns_ok, f"{a.vmm}: ndctl create-namespace on the new region gives /dev/pmem1")
    else:
        info(f"qemu: namespace on the hot-added NVDIMM: {'ok' if ns_ok else 'failed (reference)'}")
    devs = await qmp.execute("query-memory-devices")
    info(f"{a.vmm}: query-memory-devices (after hotplug) {json.dumps(devs)}")
    new = [d for d in devs if d.get("data", {}).get("id") == "nvdimm2"]
    if ok(len(devs) == 2 and len(new) == 1, f"{a.vmm}: query-memory-devices lists nv1 and nvdimm2"):
        check_fields(new[0], f"{a.vmm}: hot-added nvdimm2")
        d = new[0]["data"]
        ok(d["hotplugged"] is True and d["hotpluggable"] is True and d["memdev"] == "/objects/mem3"
           and d["slot"] == 1 and d["size"] == GIB - LABEL,
           f"{a.vmm}: nvdimm2 hotplugged={d['hotplugged']} hotpluggable={d['hotpluggable']} "
           f"memdev={d['memdev']} slot={d['slot']} size={d['size']}")
    with open(a.out, "w") as f:
        json.dump(devs, f)

    # past slots (both slots used now; 256M would still fit maxmem)
    n0 = await ticks(con)
    await qmp.execute("object-add", {"qom-type": "memory-backend-file", "id": "mem4", "share": True,
                                     "mem-path": f"{a.workdir}/nv4.img", "size": 256 << 20})
    await expect_error(qmp, "device_add", {"driver": "nvdimm", "id": "nvdimm4", "memdev": "mem4"},
                       ["slots"] if a.vmm == "pmvm" else [], f"{a.vmm}: device_add past slots")
    await qmp.execute("object-del", {"id": "mem4"})
    await running(qmp, f"{a.vmm}: after the slots refusal")
    await con.wait_for(f"TICK {n0 + 1}", 30, 0.1)  # unique enough: the guest numbers its ticks
    ok((await ticks(con)) > n0, f"{a.vmm}: guest keeps running after the refusals (console ticks {n0} -> {await ticks(con)})")
    return devs


# ---------------------------------------------------------------- hostile raw clients (pmvm)

class Raw:
    """A hand-written QMP client on a raw socket."""

    @classmethod
    async def open(cls, path, negotiate=True):
        self = cls()
        self.r, self.w = await asyncio.open_unix_connection(path, limit=1 << 22)
        self.greeting = json.loads(await asyncio.wait_for(self.r.readline(), 30))
        if negotiate:
            await self.send(b'{"execute": "qmp_capabilities"}\r\n')
            rep = await self.reply()
            assert rep == {"return": {}}, rep
        return self

    async def send(self, data):
        self.w.write(data)
        await self.w.drain()

    async def reply(self, timeout=60):
        """Next non-event message, None on EOF."""
        while True:
            line = await asyncio.wait_for(self.r.readline(), timeout)
            if not line:
                return None
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    async def until_id(self, ident, timeout=60):
        """Messages up to and including the reply with id IDENT: (before, reply)."""
        before = []
        while True:
            m = await self.reply(timeout)
            if m is None or m.get("id") == ident:
                return before, m
            before.append(m)

    def close(self):
        self.w.close()


class Heart:
    """A second qemu.qmp client running query-status every 50 ms."""

    def __init__(self, qmp):
        self.qmp, self.n, self.err = qmp, 0, None
        self.task = asyncio.create_task(self.run())

    async def run(self):
        while True:
            try:
                st = await self.qmp.execute("query-status")
                if st.get("status") == "running":
                    self.n += 1
            except Exception as e:  # noqa: BLE001 (reported as a failure)
                self.err = repr(e)
                return
            await asyncio.sleep(0.05)


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


async def case(name, coro, heart, qmp):
    n0 = heart.n
    try:
        await asyncio.wait_for(coro, 300)
    except Exception as e:  # noqa: BLE001
        ok(False, f"bad input: {name}: {type(e).__name__}: {e}")
    await asyncio.sleep(0.3)
    ok(heart.err is None and heart.n > n0,
       f"bad input: {name}: the other qemu.qmp client kept working ({heart.n - n0} query-status replies, err={heart.err})")
    await running(qmp, f"bad input: {name}: VM")


async def bad_before_negotiation(a):
    c = await Raw.open(a.sock, negotiate=False)
    ok("QMP" in c.greeting and "version" in c.greeting["QMP"], f"greeting {json.dumps(c.greeting)}")
    await c.send(b'{"execute": "query-status", "id": 1}\r\n')
    r = await c.reply()
    ok(r is not None and r.get("error", {}).get("class") == "CommandNotFound" and r.get("id") == 1
       and "qmp_capabilities" in r["error"].get("desc", ""), f"command before negotiation: {r}")
    await c.send(b'{"execute": "qmp_capabilities", "id": 2}\r\n{"execute": "query-status", "id": 3}\r\n')
    r2, r3 = await c.reply(), await c.reply()
    ok(r2 == {"return": {}, "id": 2} and r3.get("return", {}).get("status") == "running",
       f"negotiation then query-status on the same connection: {r2} {r3}")
    c.close()


async def bad_malformed(a):
    c = await Raw.open(a.sock)
    for i, junk in enumerate([b'{"execute": "query-status"]\r\n', b'{"execute": }\r\n',
                              b'\xff\xfe garbage {"a": 01}\r\n', b'{"execute": "qu\x01ery"}\r\n']):
        await c.send(junk + b'{"execute": "query-status", "id": "after%d"}\r\n' % i)
        errs, r = await c.until_id(f"after{i}")
        ok(len(errs) >= 1 and all(e.get("error", {}).get("class") == "GenericError" for e in errs)
           and r is not None and r.get("return", {}).get("status") == "running",
           f"malformed JSON {junk!r}: {len(errs)} error(s) {[e.get('error', {}).get('desc') for e in errs]}, "
           f"then the same connection answers: {r}")
    c.close()


async def bad_unknown(a):
    c = await Raw.open(a.sock)
    await c.send(b'{"execute": "no-such-command", "id": 7}\r\n')
    r = await c.reply()
    ok(r is not None and r.get("id") == 7 and r.get("error", {}).get("class") == "CommandNotFound"
       and "no-such-command" in r["error"].get("desc", ""), f"unknown command: {r}")
    c.close()


async def bad_types(a):
    c = await Raw.open(a.sock)
    cases = [
        (b'{"execute": "object-del", "arguments": {"id": 1}, "id": "t1"}', "Invalid parameter type for 'id'"),
        (b'{"execute": "human-monitor-command", "arguments": {"command-line": 42}, "id": "t2"}',
         "Invalid parameter type for 'command-line'"),
        (b'{"execute": "query-status", "arguments": {"x": 1}, "id": "t3"}', "'x' is unexpected"),
        (b'{"execute": "query-status", "arguments": [], "id": "t4"}', "'arguments' must be an object"),
        (b'{"execute": 42, "id": "t5"}', "'execute' must be a string"),
        (b'[1, 2]', "must be a JSON object"),
        (b'{"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": "m9",'
         b' "size": [1]}, "id": "t7"}', ""),
        (b'{"execute": "device_add", "arguments": {"driver": 5}, "id": "t8"}', "Invalid parameter type for 'driver'"),
    ]
    for msg, words in cases:
        await c.send(msg + b"\r\n")
        r = await c.reply()
        ok(r is not None and r.get("error", {}).get("class") == "GenericError" and words in r["error"].get("desc", ""),
           f"wrong types {msg.decode()[:70]}: {r}")
    await c.send(b'{"execute": "query-memdev", "id": "m"}\r\n')
    r = await c.reply()
    ids = [m.get("id") for m in r.get("return", [])] if r else None
    ok(ids is not None and "m9" not in ids, f"rejected object-add had no side effect (memdevs {ids})")
    c.close()


async def bad_huge(a):
    c = await Raw.open(a.sock)
    hwm0 = vm_hwm_kb(a.pid)
    total = 100 * 1000 * 1000
    chunk = b"a" * (1 << 20)
    replies, eof = [], False

    async def reader():
        nonlocal eof
        while True:
            try:
                m = await c.reply(600)
            except (ConnectionError, asyncio.IncompleteReadError):
                m = None
            if m is None:
                eof = True
                return
            replies.append(m)
            if m.get("id") == "after-big":
                return

    rt = asyncio.create_task(reader())
    t0 = time.monotonic()
    sent = 0
    try:
        await c.send(b'{"execute": "query-status", "arguments": {"x": "')
        while sent < total:
            await c.send(chunk)
            sent += len(chunk)
        await c.send(b'"}}\r\n{"execute": "query-status", "id": "after-big"}\r\n')
    except (ConnectionError, BrokenPipeError) as e:
        info(f"100 MB message: server closed the connection after {sent} bytes ({e!r})")
    await asyncio.wait_for(rt, 600)
    dt = time.monotonic() - t0
    hwm1 = vm_hwm_kb(a.pid)
    after = [m for m in replies if m.get("id") == "after-big"]
    errs = [m["error"]["desc"] for m in replies if "error" in m]
    if after:
        ok(after[0].get("return", {}).get("status") == "running" and len(errs) >= 1,
           f"100 MB message ({sent} bytes in {dt:.1f}s): error(s) {errs[:2]}, then the connection still works")
    else:
        ok(eof, f"100 MB message ({sent} bytes in {dt:.1f}s): client dropped (errors before: {errs[:2]})")
    ok(hwm1 - hwm0 < 48 * 1024, f"100 MB message: pmvm peak RSS grew by {(hwm1 - hwm0) // 1024} MiB (< 48)")
    c.close()


async def bad_disconnect(a):
    c = await Raw.open(a.sock)
    await c.send(b'{"execute": "query-status", "arguments": {"x": "abc')
    c.close()
    c2 = await Raw.open(a.sock, negotiate=False)  # drops right after the greeting
    c2.close()
    c3 = await Raw.open(a.sock)
    await c3.send(b'{"execute": "query-sta')
    await asyncio.sleep(0.2)
    c3.w.transport.abort()  # RST-like close mid-message
    c4 = await Raw.open(a.sock)
    await c4.send(b'{"execute": "query-status", "id": "fresh"}\r\n')
    r = await c4.reply()
    ok(r is not None and r.get("return", {}).get("status") == "running",
       f"clients disconnecting mid-message: a new client still works: {r}")
    c4.close()


async def bad_inputs(qmp, a):
    other = await connect("e2e-heartbeat", a.tcp or a.sock)
    info(f"second qemu.qmp client connected over {'TCP ' + a.tcp if a.tcp else 'UNIX'}")
    heart = Heart(other)
    for name, fn in [("before negotiation", bad_before_negotiation), ("malformed JSON", bad_malformed),
                     ("unknown command", bad_unknown), ("wrong argument types", bad_types),
                     ("100 MB message", bad_huge), ("disconnect mid-message", bad_disconnect)]:
        await case(name, fn(a), heart, qmp)
    heart.task.cancel()
    return other


async def powerdown(qmp, other, con, a):
    with qmp.listener(("POWERDOWN", "SHUTDOWN")) as lis, other.listener("POWERDOWN") as lis2:
        await qmp.execute("system_powerdown")
        ev = await asyncio.wait_for(lis.get(), 30)
        ok(ev["event"] == "POWERDOWN" and "seconds" in ev.get("timestamp", {}), f"POWERDOWN event {dict(ev)}")
        ev2 = await asyncio.wait_for(lis2.get(), 30)
        ok(ev2["event"] == "POWERDOWN", "the second client got POWERDOWN too")
        ok(await con.wait_for("PWR-BUTTON", 120, 0.05) is not None, "guest saw the power button")
        ev = await asyncio.wait_for(lis.get(), 120)
        data = ev.get("data", {})
        ok(ev["event"] == "SHUTDOWN" and data.get("guest") is True and data.get("reason") == "guest-shutdown",
           f"SHUTDOWN event {dict(ev)}")


async def run(a):
    global STRICT
    STRICT = a.vmm == "pmvm"
    con = Console(a.console)
    qmp = await connect("e2e-qmp", a.sock)
    ok(True, f"{a.vmm}: qemu.qmp connected and negotiated ({a.sock})")
    devs = await hotplug(qmp, con, a)
    other = None
    if a.full and devs is not None:
        other = await bad_inputs(qmp, a)
        await powerdown(qmp, other, con, a)
    else:
        try:
            await qmp.execute("quit")
        except Exception:  # noqa: BLE001 (the connection may close first)
            pass
    for c in (qmp, other):
        if c is not None:
            try:
                await c.disconnect()
            except Exception:  # noqa: BLE001 (EOF after SHUTDOWN is expected)
                pass


def compare(qfile, pfile):
    q, p = json.load(open(qfile)), json.load(open(pfile))
    ok(len(q) == len(p), f"compare: device count qemu={len(q)} pmvm={len(p)}")
    for dq, dp in zip(q, p):
        sq = {k: type(v).__name__ for k, v in dq["data"].items()}
        sp = {k: type(v).__name__ for k, v in dp["data"].items()}
        ok(dq["type"] == dp["type"] and sq == sp, f"compare {dq['data'].get('id')}: same shape {sp}")
        for k in sorted(FIELDS - {"addr"}):
            ok(dq["data"].get(k) == dp["data"].get(k),
               f"compare {dq['data'].get('id')}.{k}: qemu={dq['data'].get(k)} pmvm={dp['data'].get(k)}")
        info(f"compare {dq['data'].get('id')}.addr: qemu={dq['data'].get('addr'):#x} pmvm={dp['data'].get('addr'):#x} "
             "(pmvm starts every device on a 128 MiB boundary, QEMU packs them)")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--vmm", required=True)
    r.add_argument("--sock", required=True)
    r.add_argument("--tcp")
    r.add_argument("--console", required=True)
    r.add_argument("--workdir", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--full", action="store_true")
    c = sub.add_parser("compare")
    c.add_argument("qemu")
    c.add_argument("pmvm")
    a = ap.parse_args()
    if a.cmd == "compare":
        compare(a.qemu, a.pmvm)
        return 0
    try:
        asyncio.run(asyncio.wait_for(run(a), 1200))
    except Exception as e:  # noqa: BLE001
        ok(False, f"{a.vmm}: client aborted: {type(e).__name__}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
