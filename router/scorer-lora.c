/*
 * router/scorer-lora.c - lora-affinity-scorer: an endpoint already running
 * the requested adapter scores 1, one with a free adapter slot 0.8, one with
 * the adapter waiting 0.6, others 0 (engine lora_requests_info gauge).
 */
#include "config.h"

#include <string.h>

#include "router/picker.h"

/* name is an element of the comma-separated list. */
static int
in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p != '\0';) {
		const char *c = strchr(p, ',');
		size_t len = c != NULL ? (size_t)(c - p) : strlen(p);
		if (len == n && memcmp(p, name, n) == 0)
			return 1;
		if (c == NULL)
			break;
		p = c + 1;
	}
	return 0;
}

static int
list_len(const char *list)
{
	int n = 0;

	if (*list == '\0')
		return 0;
	for (n = 1; *list != '\0'; list++)
		n += *list == ',';
	return n;
}

static void
score_lora(const struct pick_ctx *ctx, double *out)
{
	const char *model = ctx->req->model;

	for (size_t i = 0; i < ctx->n; i++) {
		const struct endpoint_metrics *m = &ctx->c[i]->m;

		if (model == NULL)
			out[i] = 0;
		else if (in_list(m->running_loras, model))
			out[i] = 1.0;
		else if (m->max_lora > 0 &&
		    list_len(m->running_loras) + list_len(m->waiting_loras) < m->max_lora)
			out[i] = 0.8;
		else if (in_list(m->waiting_loras, model))
			out[i] = 0.6;
		else
			out[i] = 0;
	}
}

const struct scorer scorer_lora_affinity = {
	"lora-affinity-scorer", offsetof(struct sched_config, w_lora), score_lora,
};
