/*
 * lib/exepath.c - locate our executable, sibling programs and data files.
 */
#include "config.h"
#include "lib/exepath.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
is_exec(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int
exepath_self_dir(char *out, size_t outlen)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	path[n] = '\0';
	if ((slash = strrchr(path, '/')) == NULL)
		return -EINVAL;
	*slash = '\0';
	/* libtool keeps the real binary in .libs/ (possibly as lt-NAME) */
	n = (ssize_t)strlen(path);
	if (n >= 6 && strcmp(path + n - 6, "/.libs") == 0)
		path[n - 6] = '\0';
	if ((size_t)snprintf(out, outlen, "%s", path) >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

int
exepath_find_sibling(const char *name, char *out, size_t outlen)
{
	char dir[PATH_MAX];
	const char *env = getenv("LLMD_BINDIR");
	const char *path;

	if (env && *env) {
		if ((size_t)snprintf(out, outlen, "%s/%s", env, name) < outlen && is_exec(out))
			return 0;
	}
	if (exepath_self_dir(dir, sizeof(dir)) == 0) {
		if ((size_t)snprintf(out, outlen, "%s/%s", dir, name) < outlen && is_exec(out))
			return 0;
	}
	path = getenv("PATH");
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t)(colon - path) : strlen(path);

		if (len > 0 && (size_t)snprintf(out, outlen, "%.*s/%s", (int)len, path, name) < outlen &&
		    is_exec(out))
			return 0;
		path += len;
		if (*path == ':')
			path++;
	}
	return -ENOENT;
}

int
exepath_find_data(const char *rel, char *out, size_t outlen)
{
	char dir[PATH_MAX];
	struct stat st;
	const char *env = getenv("LLMD_DATADIR");

	if (env && *env) {
		snprintf(out, outlen, "%s/%s", env, rel);
		if (stat(out, &st) == 0)
			return 0;
	}
	/* uninstalled: <builddir>/config.status names the source dir; the
	 * build dir is the source dir in an in-tree build. */
	if (exepath_self_dir(dir, sizeof(dir)) == 0) {
		char probe[PATH_MAX + 32];
		snprintf(probe, sizeof(probe), "%s/srcdir.txt", dir);
		FILE *f = fopen(probe, "r");
		if (f != NULL) {
			char src[PATH_MAX];
			if (fgets(src, sizeof(src), f) != NULL) {
				src[strcspn(src, "\n")] = '\0';
				snprintf(out, outlen, "%s/etc/%s", src, rel);
				fclose(f);
				if (stat(out, &st) == 0)
					return 0;
			} else {
				fclose(f);
			}
		}
	}
	snprintf(out, outlen, "%s/%s", LLMD_DATADIR, rel);
	return stat(out, &st) == 0 ? 0 : -ENOENT;
}
