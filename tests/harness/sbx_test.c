/*
 * Harness helpers: scratch dirs, free ports, file slurping.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbx_test.h"

char *
sbx_test_scratch(const char *name)
{
	const char *tmp = getenv("TMPDIR");
	char *dir;

	if (tmp == NULL || tmp[0] == '\0') {
		tmp = "/tmp";
	}
	if (asprintf(&dir, "%s/sbx-test-%s-XXXXXX", tmp, name) < 0) {
		abort();
	}
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	return dir;
}

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void) st;
	(void) ftw;
	if (type == FTW_DP) {
		return rmdir(path) == 0 ? 0 : 0;
	}
	return unlink(path) == 0 ? 0 : 0;
}

void
sbx_test_rmtree(const char *dir)
{
	/* Best effort: a leftover scratch dir must not fail a passing test. */
	if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0) {
		fprintf(stderr, "note: could not fully remove %s\n", dir);
	}
}

void
sbx_test_scratch_free(char *dir)
{
	if (dir != NULL) {
		sbx_test_rmtree(dir);
		free(dir);
	}
}

int
sbx_test_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *) &sa, &len) != 0) {
		perror("free port");
		abort();
	}
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

char *
sbx_test_read_file(const char *path, size_t *len)
{
	char *buf = NULL;
	size_t cap = 0, n = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return NULL;
	}
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap != 0 ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			if (buf == NULL) {
				abort();
			}
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r <= 0) {
			break;
		}
		n += (size_t) r;
	}
	close(fd);
	if (buf == NULL) {
		buf = calloc(1, 1);
	}
	buf[n] = '\0';
	if (len != NULL) {
		*len = n;
	}
	return buf;
}

long long
sbx_test_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
