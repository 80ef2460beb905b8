/*
 * agent/gpu.c - GPU inventory: NVML loaded with dlopen (no link-time
 * dependency on the driver) or fake GPUs from a spec ("8xH100-80GB") for
 * tests and CPU-only hosts.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"

int
gpu_parse_fake(const char *spec, struct gpu *out, int max, int *n, struct llmd_err *e)
{
	char *copy = xstrdup(spec), *save = NULL, *tok;
	int total = 0, rc = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *x = strchr(tok, 'x'), *end, *dash;
		long cnt;
		uint64_t mib = 0;
		int i;

		cnt = strtol(tok, &end, 10);
		if (end == tok || cnt < 0 || (x && end != x) || (!x && *end)) {
			rc = err_set(e, -EINVAL, "--fake-gpus", "expected COUNTxMODEL[-MEMGB], got \"%s\"",
			    tok);
			break;
		}
		if (cnt == 0)
			continue;
		if (total + cnt > max) {
			rc = err_set(e, -EINVAL, "--fake-gpus", "more than %d GPUs", max);
			break;
		}
		if (x == NULL || !x[1]) {
			rc = err_set(e, -EINVAL, "--fake-gpus", "\"%s\": a model is required", tok);
			break;
		}
		if ((dash = strrchr(x + 1, '-')) && parse_size(dash + 1, &mib) == 0)
			mib /= 1000 * 1000;   /* "80GB" is decimal: 80000 MB ~ MiB here */
		else
			dash = NULL;
		for (i = 0; i < cnt; i++) {
			struct gpu *g = &out[total];

			memset(g, 0, sizeof(*g));
			g->index = total;
			snprintf(g->model, sizeof(g->model), "%.*s",
			    (int)(dash ? (size_t)(dash - x - 1) : strlen(x + 1)), x + 1);
			snprintf(g->uuid, sizeof(g->uuid), "GPU-fake-%04d-%.40s", total, g->model);
			g->memory_mib = mib;
			g->healthy = 1;
			total++;
		}
	}
	free(copy);
	if (rc == 0)
		*n = total;
	return rc;
}

struct nvml_memory {
	unsigned long long total, free, used;
};

int
gpu_discover_nvml(struct gpu *out, int max, int *n)
{
	void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	int (*init)(void), (*shutdown)(void);
	int (*count)(unsigned int *);
	int (*by_index)(unsigned int, void **);
	int (*name)(void *, char *, unsigned int);
	int (*uuid)(void *, char *, unsigned int);
	int (*mem)(void *, struct nvml_memory *);
	unsigned int c = 0, i;

	*n = 0;
	if (h == NULL) {
		log_debug("gpu: no NVML (%s)", dlerror());
		return 0;
	}
	*(void **)&init = dlsym(h, "nvmlInit_v2");
	*(void **)&shutdown = dlsym(h, "nvmlShutdown");
	*(void **)&count = dlsym(h, "nvmlDeviceGetCount_v2");
	*(void **)&by_index = dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
	*(void **)&name = dlsym(h, "nvmlDeviceGetName");
	*(void **)&uuid = dlsym(h, "nvmlDeviceGetUUID");
	*(void **)&mem = dlsym(h, "nvmlDeviceGetMemoryInfo");
	if (!init || !shutdown || !count || !by_index || !name || !uuid || !mem) {
		log_warnx("gpu: libnvidia-ml.so.1 lacks the functions we need");
		dlclose(h);
		return -ENOTSUP;
	}
	if (init() != 0) {
		log_warnx("gpu: nvmlInit failed");
		dlclose(h);
		return -EIO;
	}
	if (count(&c) != 0)
		c = 0;
	for (i = 0; i < c && (int)i < max; i++) {
		struct gpu *g = &out[i];
		struct nvml_memory m;
		void *d;

		memset(g, 0, sizeof(*g));
		g->index = (int)i;
		if (by_index(i, &d) != 0) {
			g->healthy = 0;
			continue;
		}
		g->healthy = 1;
		if (name(d, g->model, sizeof(g->model)) != 0)
			snprintf(g->model, sizeof(g->model), "unknown");
		if (uuid(d, g->uuid, sizeof(g->uuid)) != 0)
			g->uuid[0] = '\0';
		if (mem(d, &m) == 0)
			g->memory_mib = m.total / (1024 * 1024);
	}
	*n = (int)i;
	shutdown();
	dlclose(h);
	return 0;
}

cJSON *
gpu_to_json(const struct gpu *g, int n)
{
	cJSON *a = cJSON_CreateArray();
	int i;

	for (i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddNumberToObject(o, "index", g[i].index);
		cJSON_AddStringToObject(o, "uuid", g[i].uuid);
		cJSON_AddStringToObject(o, "model", g[i].model);
		cJSON_AddNumberToObject(o, "memoryMiB", (double)g[i].memory_mib);
		cJSON_AddBoolToObject(o, "healthy", g[i].healthy);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}
