/*
 * engine/safetensors.c - mmaps safetensors files and indexes their tensors
 * (see safetensors.h for the format). Sharded models are read through
 * model.safetensors.index.json.
 */
#include "config.h"
#include "engine/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/model-config.h"
#include "lib/util.h"

/* A header beyond this is not a weight file (HF caps it at 100 MB). */
#define ST_MAX_HEADER (100u * 1024 * 1024)

int
st_dtype_parse(const char *s)
{
	if (strcmp(s, "BF16") == 0)
		return DT_BF16;
	if (strcmp(s, "F16") == 0)
		return DT_F16;
	if (strcmp(s, "F32") == 0)
		return DT_F32;
	return -1;
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct st_entry *)a)->name, ((const struct st_entry *)b)->name);
}

/* Parses one tensor's description into en; data_len = bytes after the header. */
static int
parse_entry(const char *path, const cJSON *it, const char *base, uint64_t data_len,
    struct st_entry *en, struct llmd_err *e)
{
	char field[256];
	const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
	const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
	const cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");

	snprintf(field, sizeof(field), "%s: tensor %s", path, it->string);
	if (!cJSON_IsObject(it) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) ||
	    !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
		return err_set(e, -EINVAL, field, "needs dtype, shape and data_offsets [begin, end]");
	int d = st_dtype_parse(dt->valuestring);
	if (d < 0)
		return err_set(e, -ENOTSUP, field, "unsupported dtype %s (BF16, F16, F32 only)",
		    dt->valuestring);
	int nd = cJSON_GetArraySize(shape);
	if (nd > 4)
		return err_set(e, -ENOTSUP, field, "%d dimensions (at most 4)", nd);
	uint64_t numel = 1;
	en->t.dtype = (enum dtype)d;
	en->t.ndim = nd;
	for (int i = 0; i < 4; i++)
		en->t.shape[i] = 1;
	for (int i = 0; i < nd; i++) {
		const cJSON *x = cJSON_GetArrayItem(shape, i);
		if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 1e12 ||
		    x->valuedouble != (double)(int64_t)x->valuedouble)
			return err_set(e, -EINVAL, field, "shape[%d] is not a size", i);
		en->t.shape[i] = (int64_t)x->valuedouble;
		numel *= (uint64_t)en->t.shape[i];
		if (numel > (1ull << 40))
			return err_set(e, -EINVAL, field, "shape too large");
	}
	const cJSON *b0 = cJSON_GetArrayItem(offs, 0), *b1 = cJSON_GetArrayItem(offs, 1);
	if (!cJSON_IsNumber(b0) || !cJSON_IsNumber(b1) || b0->valuedouble < 0 ||
	    b1->valuedouble < b0->valuedouble)
		return err_set(e, -EINVAL, field, "bad data_offsets");
	uint64_t begin = (uint64_t)b0->valuedouble, end = (uint64_t)b1->valuedouble;
	if (end - begin != numel * dtype_size(en->t.dtype))
		return err_set(e, -EINVAL, field,
		    "data_offsets span %llu bytes but shape x %s needs %llu",
		    (unsigned long long)(end - begin), dtype_name(en->t.dtype),
		    (unsigned long long)(numel * dtype_size(en->t.dtype)));
	if (end > data_len)
		return err_set(e, -EINVAL, field,
		    "truncated file: data ends at byte %llu of %llu",
		    (unsigned long long)end, (unsigned long long)data_len);
	en->t.data = base ? base + begin : NULL;
	en->nbytes = end - begin;
	return 0;
}

int
st_parse_header(struct st_set *s, int file, const char *json, size_t json_len,
    uint64_t data_len, struct llmd_err *e)
{
	const char *path = s->files[file].path;
	const char *base = s->files[file].map ?
	    (const char *)s->files[file].map + 8 + json_len : NULL;
	cJSON *root = cJSON_ParseWithLength(json, json_len);
	int rc = 0;

	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(e, -EINVAL, path, "header is not a JSON object");
	}
	size_t n = 0;
	for (cJSON *it = root->child; it; it = it->next)
		n++;
	s->entries = xreallocarray(s->entries, s->n_entries + n, sizeof(*s->entries));
	for (cJSON *it = root->child; it; it = it->next) {
		if (strcmp(it->string, "__metadata__") == 0)
			continue;
		struct st_entry *en = &s->entries[s->n_entries];
		memset(en, 0, sizeof(*en));
		rc = parse_entry(path, it, base, data_len, en, e);
		if (rc < 0)
			break;
		en->name = xstrdup(it->string);
		en->file = file;
		s->n_entries++;
	}
	cJSON_Delete(root);
	if (rc < 0)
		return rc;
	qsort(s->entries, s->n_entries, sizeof(*s->entries), entry_cmp);
	for (size_t i = 1; i < s->n_entries; i++)
		if (strcmp(s->entries[i - 1].name, s->entries[i].name) == 0)
			return err_set(e, -EINVAL, path, "tensor %s appears twice",
			    s->entries[i].name);
	return 0;
}

int
st_open_file(struct st_set *s, const char *path, struct llmd_err *e)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(e, -errno, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, -EINVAL, path, "not a regular file");
	}
	size_t size = (size_t)st.st_size;
	if (size < 8) {
		close(fd);
		return err_set(e, -EINVAL, path, "truncated file: %zu bytes, no header", size);
	}
	void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	int saved = errno;
	close(fd);
	if (map == MAP_FAILED)
		return err_set(e, -saved, path, "mmap: %s", strerror(saved));

	const unsigned char *p = map;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | p[i];
	if (hlen > size - 8 || hlen > ST_MAX_HEADER) {
		munmap(map, size);
		return err_set(e, -EINVAL, path,
		    "header of %llu bytes is larger than the file (%zu bytes)",
		    (unsigned long long)hlen, size);
	}
	s->files = xreallocarray(s->files, (size_t)s->n_files + 1, sizeof(*s->files));
	int fi = s->n_files++;
	s->files[fi].path = xstrdup(path);
	s->files[fi].map = map;
	s->files[fi].size = size;
	return st_parse_header(s, fi, (const char *)p + 8, (size_t)hlen,
	    (uint64_t)(size - 8 - hlen), e);
}

static int
open_index(struct st_set *s, const char *dir, const char *index, struct llmd_err *e)
{
	char *txt;
	size_t len;
	int rc = config_read_file(index, 64u * 1024 * 1024, &txt, &len, e);
	if (rc < 0)
		return rc;
	cJSON *root = cJSON_ParseWithLength(txt, len);
	free(txt);
	const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
	if (!cJSON_IsObject(wm)) {
		cJSON_Delete(root);
		return err_set(e, -EINVAL, index, "no \"weight_map\" object");
	}
	/* open each distinct shard once */
	char **seen = NULL;
	size_t n_seen = 0;
	for (const cJSON *it = wm->child; it && rc == 0; it = it->next) {
		if (!cJSON_IsString(it) || strchr(it->valuestring, '/') != NULL) {
			rc = err_set(e, -EINVAL, index, "weight_map[%s]: not a file name", it->string);
			break;
		}
		size_t i;
		for (i = 0; i < n_seen; i++)
			if (strcmp(seen[i], it->valuestring) == 0)
				break;
		if (i < n_seen)
			continue;
		seen = xreallocarray(seen, n_seen + 1, sizeof(*seen));
		seen[n_seen++] = it->valuestring;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, it->valuestring);
		rc = st_open_file(s, path, e);
	}
	/* every tensor of the map must be in the shard it names */
	for (const cJSON *it = wm->child; it && rc == 0; it = it->next) {
		const struct st_entry *en = st_find(s, it->string);
		if (en == NULL) {
			rc = err_set(e, -ENOENT, index, "tensor %s: not found in %s", it->string,
			    it->valuestring);
			break;
		}
	}
	free(seen);
	cJSON_Delete(root);
	return rc;
}

int
st_open_dir(struct st_set *s, const char *dir, struct llmd_err *e)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	if (stat(path, &st) == 0)
		return open_index(s, dir, path, e);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	return st_open_file(s, path, e);
}

void
st_close(struct st_set *s)
{
	for (int i = 0; i < s->n_files; i++) {
		if (s->files[i].map)
			munmap(s->files[i].map, s->files[i].size);
		free(s->files[i].path);
	}
	for (size_t i = 0; i < s->n_entries; i++)
		free(s->entries[i].name);
	free(s->files);
	free(s->entries);
	memset(s, 0, sizeof(*s));
}

const struct st_entry *
st_find(const struct st_set *s, const char *name)
{
	size_t lo = 0, hi = s->n_entries;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, s->entries[mid].name);
		if (c == 0)
			return &s->entries[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
