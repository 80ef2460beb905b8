/*
 * engine/safetensors.h - read-only access to safetensors weight files.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "BF16", "shape": [d, k], "data_offsets": [b, e]}, ...,
 * "__metadata__": {...}}), then the raw tensor bytes. Files are mmapped; a
 * tensor is a struct tensor view pointing into the mapping (no copy).
 * A set holds one file or the shards named by model.safetensors.index.json.
 * Every error names the file and, where one is at fault, the tensor.
 */
#ifndef LLMD_ENGINE_SAFETENSORS_H
#define LLMD_ENGINE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tensor.h"
#include "lib/err.h"

struct st_entry {
	char *name;
	int file;               /* index into st_set.files */
	struct tensor t;        /* data points into the mapping */
	uint64_t nbytes;
};

struct st_file {
	char *path;
	void *map;              /* whole file, PROT_READ */
	size_t size;
};

struct st_set {
	struct st_file *files;
	int n_files;
	struct st_entry *entries;   /* sorted by name */
	size_t n_entries;
};

/* Opens one .safetensors file into an empty set (appends when set has files). */
int st_open_file(struct st_set *s, const char *path, struct llmd_err *e);
/*
 * Opens DIR/model.safetensors, or every shard listed in
 * DIR/model.safetensors.index.json ("weight_map") when that exists.
 */
int st_open_dir(struct st_set *s, const char *dir, struct llmd_err *e);
/* Parses the JSON header of files[file] (exposed for tests); data_len = bytes
 * after the header. Tensor data points into files[file].map (NULL if unmapped). */
int st_parse_header(struct st_set *s, int file, const char *json, size_t json_len,
    uint64_t data_start, struct llmd_err *e);
void st_close(struct st_set *s);

/* Tensor by name or NULL. */
const struct st_entry *st_find(const struct st_set *s, const char *name);
/* "BF16" -> DT_BF16 ...; -1 when unsupported. */
int st_dtype_parse(const char *s);

#endif
