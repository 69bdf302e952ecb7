/* vncprobe: a tiny static RFB 3.8 client for the e2e tests in L1 (busybox, no Python).
 *
 *   vncprobe [-t SECS] ADDR STEP...
 *
 * ADDR is HOST:PORT (numeric) or unix:PATH. It does the 3.8 handshake with the None security type,
 * asks for 32-bit little-endian XRGB pixels and Raw encoding, then runs the steps in order:
 *
 *   console=N    press Ctrl-Alt-N (QEMU's console switch)
 *   type=TEXT    type TEXT; the two characters \n in TEXT press Return
 *   key=SYM      press and release one keysym, in hex (key=ff0d is Return)
 *   sleep=MS     wait
 *   dump=FILE    request a full update and write the screen as a binary PPM
 *   watch=SECS   be an idle viewer for SECS: keep an incremental update request pending and
 *                read what the server sends (prints the number of updates)
 *   find=TEXT    poll the screen (full updates) until TEXT is shown, cell-aligned in 8x16
 *                cells with the glyphs of harness/vncfont.h (pmvm's text console font: a pixel
 *                is "ink" when it is not black); fails after -t SECS (default 20)
 *
 * Prints one line per find/dump; exits 0 when every step succeeded, 1 otherwise, 2 on usage
 * or connection errors. Built with gcc -static by tests/e2e/stage.sh. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vncfont.h"

static int fd = -1;
static unsigned w, h;
static uint32_t *fb;

static void die(const char *what)
{
	fprintf(stderr, "vncprobe: %s: %s\n", what, errno ? strerror(errno) : "protocol error");
	exit(2);
}

static void rd(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				errno = 0;
			die("read");
		}
		p += r;
		n -= (size_t)r;
	}
}

static void wr(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			die("write");
		}
		p += r;
		n -= (size_t)r;
	}
}

static uint32_t be32(const uint8_t *b) { return (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]; }
static unsigned be16(const uint8_t *b) { return (unsigned)b[0] << 8 | b[1]; }

static void connect_to(const char *addr)
{
	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(addr + 5) >= sizeof(sa.sun_path))
			die("unix path too long");
		strcpy(sa.sun_path, addr + 5);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die(addr);
		return;
	}
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof(host))
		die("ADDR must be HOST:PORT or unix:PATH");
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	/* Numeric addresses only: getaddrinfo in a static binary would need glibc's NSS. */
	int port = atoi(colon + 1);
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
	const char *hs = host[0] ? host : "127.0.0.1";
	if (hs[0] == '[') { /* [v6]:port */
		hs++;
		host[strlen(host) - 1] = 0;
	}
	if (inet_pton(AF_INET, hs, &a4.sin_addr) == 1) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a4, sizeof(a4)) < 0)
			die(addr);
	} else if (inet_pton(AF_INET6, hs, &a6.sin6_addr) == 1) {
		fd = socket(AF_INET6, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a6, sizeof(a6)) < 0)
			die(addr);
	} else {
		errno = 0;
		die("HOST must be a numeric IPv4 or IPv6 address");
	}
}

static void handshake(void)
{
	uint8_t b[24];
	rd(b, 12);
	if (memcmp(b, "RFB 003.", 8) != 0)
		die("not an RFB server");
	wr("RFB 003.008\n", 12);
	rd(b, 1);
	if (b[0] == 0) {
		uint8_t l[4];
		rd(l, 4);
		char reason[256] = "";
		uint32_t n = be32(l);
		rd(reason, n < 255 ? n : 255);
		fprintf(stderr, "vncprobe: refused: %s\n", reason);
		exit(2);
	}
	uint8_t types[255];
	int none = 0;
	rd(types, b[0]);
	for (int i = 0; i < b[0]; i++)
		none |= types[i] == 1;
	if (!none) {
		fprintf(stderr, "vncprobe: the server wants a password (no None security type)\n");
		exit(2);
	}
	wr("\x01", 1);
	rd(b, 4);
	if (be32(b) != 0)
		die("security result");
	wr("\x01", 1); /* shared */
	rd(b, 24);
	w = be16(b);
	h = be16(b + 2);
	uint32_t nl = be32(b + 20);
	char name[256];
	while (nl) {
		uint32_t k = nl < sizeof(name) ? nl : sizeof(name);
		rd(name, k);
		nl -= k;
	}
	fb = calloc((size_t)w * h, 4);
	if (!fb)
		die("calloc");
	/* SetPixelFormat: 32 bpp, depth 24, little-endian, true colour, 255/255/255, 16/8/0. */
	uint8_t pf[20] = { 0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 };
	wr(pf, sizeof(pf));
	uint8_t enc[8] = { 2, 0, 0, 1, 0, 0, 0, 0 }; /* SetEncodings: Raw */
	wr(enc, sizeof(enc));
}

static void request(int incremental)
{
	uint8_t req[10] = { 3, (uint8_t)incremental, 0, 0, 0, 0, (uint8_t)(w >> 8), (uint8_t)w, (uint8_t)(h >> 8), (uint8_t)h };
	wr(req, sizeof(req));
}

/* Reads server messages up to and including one FramebufferUpdate, applied to fb. */
static void read_update(void)
{
	for (;;) {
		uint8_t t;
		rd(&t, 1);
		if (t == 0)
			break;
		if (t == 2) /* Bell */
			continue;
		if (t == 3) { /* ServerCutText */
			uint8_t c[7];
			rd(c, 7);
			for (uint32_t n = be32(c + 3); n; n--)
				rd(&t, 1);
			continue;
		}
		errno = 0;
		die("unexpected server message");
	}
	uint8_t hd[3];
	rd(hd, 3);
	for (unsigned n = be16(hd + 1); n; n--) {
		uint8_t r[12];
		rd(r, 12);
		unsigned x = be16(r), y = be16(r + 2), rw = be16(r + 4), rh = be16(r + 6);
		if (be32(r + 8) != 0 || x + rw > w || y + rh > h) {
			errno = 0;
			die("unexpected rectangle");
		}
		for (unsigned row = 0; row < rh; row++)
			rd(fb + (size_t)(y + row) * w + x, (size_t)rw * 4);
	}
}

static void full_update(void)
{
	request(0);
	read_update();
}

static void key(uint32_t sym, int down)
{
	uint8_t m[8] = { 4, (uint8_t)down, 0, 0, (uint8_t)(sym >> 24), (uint8_t)(sym >> 16), (uint8_t)(sym >> 8), (uint8_t)sym };
	wr(m, sizeof(m));
}

static void tap(uint32_t sym)
{
	key(sym, 1);
	key(sym, 0);
	usleep(2000);
}

static int shown_at(const char *text, unsigned cx, unsigned cy)
{
	for (size_t i = 0; text[i]; i++) {
		unsigned char c = (unsigned char)text[i];
		const unsigned char *g = vnc_font[(c >= 0x20 && c <= 0x7e ? c : '?') - 0x20];
		for (unsigned gy = 0; gy < 16; gy++)
			for (unsigned gx = 0; gx < 8; gx++) {
				uint32_t px = fb[(size_t)(cy * 16 + gy) * w + (cx + i) * 8 + gx] & 0xffffff;
				if (((g[gy / 2] >> gx) & 1) != (px != 0))
					return 0;
			}
	}
	return 1;
}

static int shown(const char *text)
{
	size_t n = strlen(text);
	if (n == 0 || n > w / 8)
		return 0;
	for (unsigned cy = 0; cy < h / 16; cy++)
		for (unsigned cx = 0; cx + n <= w / 8; cx++)
			if (shown_at(text, cx, cy))
				return 1;
	return 0;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int timeout = 20, i = 1, rc = 0;
	if (argc > 2 && strcmp(argv[1], "-t") == 0) {
		timeout = atoi(argv[2]);
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: vncprobe [-t SECS] HOST:PORT|unix:PATH STEP...\n"
				"steps: console=N type=TEXT key=HEXSYM sleep=MS dump=FILE watch=SECS find=TEXT\n");
		return 2;
	}
	connect_to(argv[i++]);
	handshake();
	for (; i < argc; i++) {
		const char *a = argv[i], *v = strchr(a, '=');
		if (!v) {
			fprintf(stderr, "vncprobe: bad step '%s'\n", a);
			return 2;
		}
		v++;
		if (strncmp(a, "console=", 8) == 0) {
			key(0xffe3, 1);
			key(0xffe9, 1);
			tap((uint32_t)('0' + atoi(v)));
			key(0xffe9, 0);
			key(0xffe3, 0);
			usleep(50000);
		} else if (strncmp(a, "type=", 5) == 0) {
			for (const char *p = v; *p; p++) {
				if (p[0] == '\\' && p[1] == 'n') {
					tap(0xff0d);
					p++;
				} else {
					tap((uint8_t)*p);
				}
			}
		} else if (strncmp(a, "key=", 4) == 0) {
			tap((uint32_t)strtoul(v, NULL, 16));
		} else if (strncmp(a, "sleep=", 6) == 0) {
			usleep((useconds_t)atoi(v) * 1000);
		} else if (strncmp(a, "dump=", 5) == 0) {
			full_update();
			FILE *f = fopen(v, "wb");
			if (!f) {
				perror(v);
				return 2;
			}
			fprintf(f, "P6\n%u %u\n255\n", w, h);
			for (size_t p = 0; p < (size_t)w * h; p++) {
				uint8_t rgb[3] = { (uint8_t)(fb[p] >> 16), (uint8_t)(fb[p] >> 8), (uint8_t)fb[p] };
				fwrite(rgb, 1, 3, f);
			}
			fclose(f);
			printf("DUMP %ux%u %s\n", w, h, v);
		} else if (strncmp(a, "watch=", 6) == 0) {
			double t0 = now(), secs = atof(v);
			unsigned long updates = 0;
			request(1);
			while (now() - t0 < secs) {
				struct pollfd p = { .fd = fd, .events = POLLIN };
				if (poll(&p, 1, 200) > 0) {
					read_update();
					updates++;
					request(1);
				}
			}
			printf("WATCH %lu updates in %.1f s\n", updates, secs);
		} else if (strncmp(a, "find=", 5) == 0) {
			double t0 = now();
			int ok = 0;
			do {
				full_update();
				ok = shown(v);
				if (!ok)
					usleep(100000);
			} while (!ok && now() - t0 < timeout);
			printf("%s: %s\n", ok ? "FOUND" : "NOT FOUND", v);
			rc |= !ok;
		} else {
			fprintf(stderr, "vncprobe: bad step '%s'\n", a);
			return 2;
		}
		fflush(stdout);
	}
	return rc;
}
