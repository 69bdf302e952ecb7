#!/usr/bin/env python3
"""Drive a pmvm QMP server with the real `qemu.qmp` client from PyPI.

Usage: qemu_qmp_client.py SOCKET_PATH
Prints "PASS" and exits 0 when every step behaved as with QEMU.
"""
import asyncio
import sys

from qemu.qmp import QMPClient, ExecuteError


async def main(path: str) -> None:
    qmp = QMPClient("pmvm-test")
    await qmp.connect(path)  # reads the greeting, negotiates capabilities
    ver = await qmp.execute("query-version")
    assert ver["qemu"]["major"] == 10, ver
    assert (await qmp.execute("query-status"))["status"] == "running"

    await qmp.execute("object-add", {"qom-type": "memory-backend-file", "id": "mem3",
                                     "share": True, "mem-path": "/x", "size": 4 << 30})
    await qmp.execute("device_add", {"driver": "nvdimm", "id": "nvdimm2", "memdev": "mem3"})
    devs = await qmp.execute("query-memory-devices")
    assert devs[0]["type"] == "nvdimm" and devs[0]["data"]["memdev"] == "/objects/mem3", devs

    try:
        await qmp.execute("device_del", {"id": "nope"})
        raise AssertionError("device_del of a missing device succeeded")
    except ExecuteError as e:
        assert e.error_class == "DeviceNotFound", e

    try:
        await qmp.execute("no-such-command")
        raise AssertionError("unknown command succeeded")
    except ExecuteError as e:
        assert e.error_class == "CommandNotFound", e

    out = await qmp.execute("human-monitor-command", {"command-line": "info memory-devices"})
    assert 'Memory device [nvdimm]: "nvdimm2"' in out, out

    with qmp.listener("POWERDOWN") as listener:
        await qmp.execute("system_powerdown")
        ev = await asyncio.wait_for(listener.get(), 10)
        assert ev["event"] == "POWERDOWN" and "timestamp" in ev, ev

    with qmp.listener("SHUTDOWN") as listener:
        await qmp.execute("quit")
        ev = await asyncio.wait_for(listener.get(), 10)
        assert ev["data"]["reason"] == "host-qmp-quit", ev
    await qmp.disconnect()
    print("PASS")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
