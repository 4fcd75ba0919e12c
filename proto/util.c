/*
 * Clocks, randomness, constant-time compare. Pure apart from the syscalls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

int64_t
sbx_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
sbx_mono_ms(void)
{
	return (int64_t) (sbx_mono_ns() / 1000000);
}

uint64_t
sbx_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

sbx_err
sbx_random(void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = getrandom((char *) buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return SBX_EINTERNAL;
		}
		got += (size_t) n;
	}
	return SBX_OK;
}

int
sbx_secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char) (la != lb);

	for (size_t i = 0; i < la; i++) {
		diff |= (unsigned char) (a[i] ^ b[i % (lb != 0 ? lb : 1)]);
	}
	return diff == 0;
}

char *
sbx_read_small_file(const char *path, size_t max)
{
	char *buf;
	size_t n = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return NULL;
	}
	if ((buf = malloc(max + 1)) == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	while (n <= max && (r = read(fd, buf + n, max + 1 - n)) > 0) {
		n += (size_t) r;
	}
	close(fd);
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}
