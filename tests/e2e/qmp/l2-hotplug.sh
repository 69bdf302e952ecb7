#!/bin/sh
# L2 guest script for tests/e2e/qmp.sh (busybox sh). Waits for a hot-added NVDIMM (region1),
# labels it and creates an fsdax namespace, then prints numbered TICK lines until the ACPI power
# button is pressed (button.ko + evdev.ko from /l2), and returns (L2 /init powers off).
insmod /l2/evdev.ko 2>/dev/null
insmod /l2/button.ko 2>/dev/null
ev=""
for e in /sys/class/input/event*; do
	grep -q "Power Button" "$e/device/name" 2>/dev/null && ev=${e##*/}
done
echo "HP-POWER-BUTTON-DEV=${ev:-none}"
# poll without forking (a fork+exec costs ~100 ms here): builtin `[`, 5 ms `read -t` on an idle FIFO
mkfifo /tmp/idle && exec 3<>/tmp/idle
read up _ </proc/uptime
echo "HP-WAITING uptime=$up"
i=0
while [ ! -e /sys/bus/nd/devices/region1 ] && [ $i -lt 24000 ]; do read -t 0.005 x <&3; i=$((i + 1)); done
read up _ </proc/uptime
[ -e /sys/bus/nd/devices/region1 ] && echo "HP-SEEN polls=$i uptime=$up" || echo "HP-TIMEOUT"
if [ -e /sys/bus/nd/devices/region1 ]; then
	ndctl disable-region region1 >/dev/null && ndctl init-labels -f nmem1 >/dev/null &&
		ndctl enable-region region1 >/dev/null &&
		ndctl create-namespace -r region1 -m fsdax && [ -b /dev/pmem1 ] && echo "HP-NAMESPACE-OK"
	echo "HP-REGION1-SIZE=$(cat /sys/bus/nd/devices/region1/size)"
fi
echo "HP-DONE"
(n=0; while :; do n=$((n + 1)); echo "TICK $n"; sleep 1; done) &
tick=$!
if [ -n "$ev" ]; then
	head -c 24 "/dev/input/$ev" >/dev/null # blocks until the first input event: the button press
	echo "PWR-BUTTON"
else
	sleep 600
fi
kill $tick
exit 0
