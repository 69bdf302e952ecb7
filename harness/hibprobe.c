/*
 * hibprobe: tiny static probe used inside the host-in-a-box L1 (and L2).
 *
 *   hibprobe mapsync FILE          try mmap(MAP_SHARED_VALIDATE|MAP_SYNC) on FILE,
 *                                  store one byte through it, report STATX_ATTR_DAX.
 *                                  exit 0 if MAP_SYNC worked, 1 if refused, 2 on usage/IO error.
 *   hibprobe peek PATH OFF LEN     print LEN raw bytes at OFF (through mmap).
 *   hibprobe poke PATH OFF STRING  write STRING at OFF (through mmap).
 *   hibprobe dmaread DEV FILE LEN  O_DIRECT read of LEN bytes from the start of DEV into a
 *                                  MAP_SHARED mapping of FILE (on a DAX file system: the
 *                                  device's DMA lands in pmem, not in RAM).
 *   hibprobe dmawrite FILE DEV LEN O_DIRECT write to DEV from a MAP_SHARED mapping of FILE.
 *
 * peek/poke map a 2 MiB-aligned window around [OFF, OFF+LEN), so they also work on
 * device-dax character devices, which have no read()/write() and require mappings
 * aligned to the device alignment (2 MiB here).
 * Written for pmvm's harness; no code copied from elsewhere.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

#define WINDOW_ALIGN (2UL * 1024 * 1024)

static int usage(void)
{
	fprintf(stderr, "usage: hibprobe mapsync FILE | peek PATH OFF LEN | poke PATH OFF STRING"
			" | dmaread DEV FILE LEN | dmawrite FILE DEV LEN\n");
	return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end != '\0')
		return -1;
	*out = (uint64_t)v;
	return 0;
}

static void report_dax(const char *path)
{
	struct statx stx;
	if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &stx) != 0) {
		printf("STATX_ATTR_DAX unknown (statx: %s)\n", strerror(errno));
		return;
	}
	if (!(stx.stx_attributes_mask & STATX_ATTR_DAX))
		printf("STATX_ATTR_DAX unsupported\n");
	else if (stx.stx_attributes & STATX_ATTR_DAX)
		printf("STATX_ATTR_DAX set\n");
	else
		printf("STATX_ATTR_DAX clear\n");
}

static int cmd_mapsync(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		fprintf(stderr, "hibprobe: open %s: %s\n", path, strerror(errno));
		return 2;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		fprintf(stderr, "hibprobe: fstat %s: %s\n", path, strerror(errno));
		close(fd);
		return 2;
	}
	size_t len = 4096;
	if (S_ISREG(st.st_mode) && (size_t)st.st_size < len && ftruncate(fd, (off_t)len) != 0) {
		fprintf(stderr, "hibprobe: ftruncate %s: %s\n", path, strerror(errno));
		close(fd);
		return 2;
	}
	int rc;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		printf("MAP_SYNC failed errno=%d (%s)\n", e, strerror(e));
		rc = 1;
	} else {
		volatile unsigned char *b = p;
		b[0] = (unsigned char)(b[0] + 1); /* one store through the synchronous mapping */
		printf("MAP_SYNC ok\n");
		munmap(p, len);
		rc = 0;
	}
	report_dax(path);
	close(fd);
	return rc;
}

/* Map the 2 MiB-aligned window covering [off, off+len). */
static unsigned char *map_window(const char *path, int writable, uint64_t off, uint64_t len,
				 void **base, size_t *maplen)
{
	int fd = open(path, writable ? O_RDWR : O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "hibprobe: open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && off + len > (uint64_t)st.st_size) {
		fprintf(stderr, "hibprobe: %s: range 0x%llx+0x%llx beyond end of file (0x%llx)\n", path,
			(unsigned long long)off, (unsigned long long)len, (unsigned long long)st.st_size);
		close(fd);
		return NULL;
	}
	uint64_t start = off & ~(uint64_t)(WINDOW_ALIGN - 1);
	uint64_t end = (off + len + WINDOW_ALIGN - 1) & ~(uint64_t)(WINDOW_ALIGN - 1);
	if (end <= start)
		end = start + WINDOW_ALIGN;
	*maplen = (size_t)(end - start);
	int prot = PROT_READ | (writable ? PROT_WRITE : 0);
	void *p = mmap(NULL, *maplen, prot, MAP_SHARED, fd, (off_t)start);
	close(fd);
	if (p == MAP_FAILED) {
		fprintf(stderr, "hibprobe: mmap %s at 0x%llx len 0x%zx: %s\n", path,
			(unsigned long long)start, *maplen, strerror(errno));
		return NULL;
	}
	*base = p;
	return (unsigned char *)p + (off - start);
}

static int cmd_peek(const char *path, const char *soff, const char *slen)
{
	uint64_t off, len;
	if (parse_u64(soff, &off) || parse_u64(slen, &len) || len == 0 || len > (64UL << 20))
		return usage();
	void *base;
	size_t maplen;
	unsigned char *p = map_window(path, 0, off, len, &base, &maplen);
	if (!p)
		return 2;
	size_t done = 0;
	while (done < len) {
		ssize_t w = write(1, p + done, (size_t)(len - done));
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	munmap(base, maplen);
	return done == len ? 0 : 2;
}

static int cmd_poke(const char *path, const char *soff, const char *data)
{
	uint64_t off;
	size_t len = strlen(data);
	if (parse_u64(soff, &off) || len == 0)
		return usage();
	void *base;
	size_t maplen;
	unsigned char *p = map_window(path, 1, off, len, &base, &maplen);
	if (!p)
		return 2;
	memcpy(p, data, len);
	/* msync on device-dax returns EINVAL; that is harmless (stores are already in pmem). */
	if (msync(base, maplen, MS_SYNC) != 0 && errno != EINVAL)
		fprintf(stderr, "hibprobe: msync: %s\n", strerror(errno));
	munmap(base, maplen);
	return 0;
}

/* O_DIRECT I/O between a block device and a shared file mapping. */
static int cmd_dma(int to_file, const char *file, const char *dev, const char *slen)
{
	uint64_t len;
	if (parse_u64(slen, &len) || len == 0 || len % 4096 || len > (256UL << 20))
		return usage();
	int ffd = open(file, O_RDWR | O_CREAT, 0644);
	int dfd = open(dev, (to_file ? O_RDONLY : O_WRONLY) | O_DIRECT);
	if (ffd < 0 || dfd < 0 || ftruncate(ffd, (off_t)len) != 0) {
		fprintf(stderr, "hibprobe: open %s / %s: %s\n", file, dev, strerror(errno));
		return 2;
	}
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "hibprobe: mmap %s: %s\n", file, strerror(errno));
		return 2;
	}
	ssize_t n = to_file ? pread(dfd, p, len, 0) : pwrite(dfd, p, len, 0);
	if (n != (ssize_t)len) {
		fprintf(stderr, "hibprobe: O_DIRECT %s %s: %zd of %llu bytes: %s\n", to_file ? "read from" : "write to",
			dev, n, (unsigned long long)len, n < 0 ? strerror(errno) : "short");
		return 1;
	}
	if (to_file && msync(p, len, MS_SYNC) != 0)
		fprintf(stderr, "hibprobe: msync: %s\n", strerror(errno));
	munmap(p, len);
	close(dfd);
	close(ffd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "dmaread") == 0)
		return cmd_dma(1, argv[3], argv[2], argv[4]);
	if (argc == 5 && strcmp(argv[1], "dmawrite") == 0)
		return cmd_dma(0, argv[2], argv[3], argv[4]);
	if (argc == 3 && strcmp(argv[1], "mapsync") == 0)
		return cmd_mapsync(argv[2]);
	if (argc == 5 && strcmp(argv[1], "peek") == 0)
		return cmd_peek(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "poke") == 0)
		return cmd_poke(argv[2], argv[3], argv[4]);
	return usage();
}
