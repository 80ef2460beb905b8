/*
 * agent/translate.c - from a pod's container to a host process: which
 * program runs it (vLLM images and commands become llmd-engine serve, the
 * routing sidecar becomes llmd-router sidecar, host executables run as is),
 * $(VAR) expansion as Kubernetes does it, mount paths rewritten to host
 * paths and the port flags rewritten to the ports the agent allocated.
 * Pure: no I/O besides looking executables up on PATH.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/buf.h"
#include "lib/util.h"

static const char *
jstr(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const char *
env_lookup(const cJSON *env, const char *name, size_t len)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, env) {
		const char *n = jstr(v, "name");

		if (n && strlen(n) == len && strncmp(n, name, len) == 0)
			return jstr(v, "value") ? jstr(v, "value") : "";
	}
	return NULL;
}

char *
translate_expand(const char *s, const cJSON *env)
{
	struct buf b = BUF_INIT;
	const char *p = s;

	while (*p) {
		if (p[0] == '$' && p[1] == '$') {
			buf_addch(&b, '$');
			p += 2;
		} else if (p[0] == '$' && p[1] == '(') {
			const char *end = strchr(p + 2, ')');
			const char *v = end ? env_lookup(env, p + 2, (size_t)(end - p - 2)) : NULL;

			if (v) {
				buf_adds(&b, v);
				p = end + 1;
			} else {
				buf_addch(&b, *p++);
			}
		} else {
			buf_addch(&b, *p++);
		}
	}
	return buf_detach(&b, NULL);
}

char *
translate_path(const char *s, const struct mount_map *m, size_t n)
{
	size_t i, best = (size_t)-1, bestlen = 0;

	for (i = 0; i < n; i++) {
		size_t l = strlen(m[i].mount_path);

		while (l > 1 && m[i].mount_path[l - 1] == '/')
			l--;
		if (strncmp(s, m[i].mount_path, l) == 0 && (s[l] == '\0' || s[l] == '/') &&
		    l > bestlen) {
			best = i;
			bestlen = l;
		}
	}
	if (best == (size_t)-1) {
		/* "--flag=/mnt/models/x" */
		const char *eq = s[0] == '-' ? strchr(s, '=') : NULL;

		if (eq) {
			char *rest = translate_path(eq + 1, m, n);
			struct buf b = BUF_INIT;

			buf_add(&b, s, (size_t)(eq + 1 - s));
			buf_adds(&b, rest);
			free(rest);
			return buf_detach(&b, NULL);
		}
		return xstrdup(s);
	}
	{
		struct buf b = BUF_INIT;

		buf_adds(&b, m[best].host_path);
		buf_adds(&b, s + bestlen);
		return buf_detach(&b, NULL);
	}
}

/* The container's command + args, expanded, as a NULL-terminated vector. */
static char **
command_line(const cJSON *c, size_t *n_out)
{
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(c, "env"), *v;
	const char *lists[] = { "command", "args" };
	char **v_out = NULL;
	size_t n = 0, i;

	for (i = 0; i < 2; i++)
		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(c, lists[i])) {
			if (!cJSON_IsString(v))
				continue;
			v_out = xreallocarray(v_out, n + 2, sizeof(*v_out));
			v_out[n++] = translate_expand(v->valuestring, env);
		}
	if (v_out == NULL)
		v_out = xcalloc(1, sizeof(*v_out));
	v_out[n] = NULL;
	*n_out = n;
	return v_out;
}

static void
strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static int
image_has(const cJSON *c, const char *what)
{
	const char *img = jstr(c, "image");

	return img && strstr(img, what) != NULL;
}

int
translate_is_scheduler(const cJSON *c)
{
	return image_has(c, "llm-d-inference-scheduler") || image_has(c, "/epp:") ||
	    image_has(c, "gateway-api-inference-extension");
}

int
translate_is_sidecar(const cJSON *c)
{
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(c, "command");
	const char *c0 = cJSON_IsArray(cmd) && cmd->child ? cmd->child->valuestring : NULL;

	return image_has(c, "llm-d-routing-sidecar") ||
	    (c0 && strcmp(base_name(c0), "llm-d-routing-sidecar") == 0);
}

/* vLLM, or already llmd-engine. Sets *skip to the words before the model. */
static int
is_engine(const cJSON *c, char **argv, size_t n, size_t *skip)
{
	if (n >= 2 && strcmp(base_name(argv[0]), "llmd-engine") == 0 &&
	    strcmp(argv[1], "serve") == 0) {
		*skip = 2;
		return 1;
	}
	if (n >= 2 && strcmp(base_name(argv[0]), "vllm") == 0 && strcmp(argv[1], "serve") == 0) {
		*skip = 2;
		return 1;
	}
	if (n >= 3 && strncmp(base_name(argv[0]), "python", 6) == 0 &&
	    strcmp(argv[1], "-m") == 0 &&
	    strcmp(argv[2], "vllm.entrypoints.openai.api_server") == 0) {
		*skip = 3;
		return 1;
	}
	if (image_has(c, "vllm/vllm-openai") || image_has(c, "vllm-openai")) {
		*skip = 0;
		return 1;
	}
	return 0;
}

static int
on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL, *dir;
	char full[4096];
	int found = 0;

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0;
	if (path == NULL)
		return 0;
	copy = xstrdup(path);
	for (dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		snprintf(full, sizeof(full), "%s/%s", dir, prog);
		found = access(full, X_OK) == 0;
	}
	free(copy);
	return found;
}

struct vec {
	char **v;
	size_t n;
};

static void
vec_add(struct vec *v, char *s)
{
	v->v = xreallocarray(v->v, v->n + 2, sizeof(*v->v));
	v->v[v->n++] = s;
	v->v[v->n] = NULL;
}

/* Is argv[i] flag (as "--flag V" or "--flag=V")? *val_idx/inline set. */
static int
flag_is(const char *arg, const char *flag)
{
	size_t l = strlen(flag);

	return strncmp(arg, flag, l) == 0 && (arg[l] == '\0' || arg[l] == '=');
}

/* Copies args[from..n) with --port/--vllm-port/--host rewritten and paths translated. */
static void
copy_flags(struct vec *out, char **args, size_t from, size_t n, const struct translate_ctx *ctx,
    int is_engine_proc, int *saw_host)
{
	size_t i;
	char num[16];

	for (i = from; i < n; i++) {
		const char *a = args[i];
		const char *rewrite = NULL;
		const char *flag = NULL;

		if (flag_is(a, "--port")) {
			flag = "--port";
			snprintf(num, sizeof(num), "%d", ctx->port);
			rewrite = num;
		} else if (!is_engine_proc && flag_is(a, "--vllm-port")) {
			flag = "--vllm-port";
			snprintf(num, sizeof(num), "%d", ctx->vllm_port);
			rewrite = num;
		} else if (is_engine_proc && flag_is(a, "--host") && ctx->host) {
			flag = "--host";
			rewrite = ctx->host;
			*saw_host = 1;
		}
		if (flag) {
			vec_add(out, xstrdup(flag));
			vec_add(out, xstrdup(rewrite));
			if (a[strlen(flag)] == '\0' && i + 1 < n)
				i++;
			continue;
		}
		vec_add(out, translate_path(a, ctx->mounts, ctx->nmounts));
	}
}

static char **
container_env(const cJSON *c, const struct translate_ctx *ctx)
{
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(c, "env"), *v;
	struct vec out = { NULL, 0 };

	cJSON_ArrayForEach(v, env) {
		const char *name = jstr(v, "name"), *val = jstr(v, "value");
		char *x, *p;
		struct buf b = BUF_INIT;

		if (name == NULL || val == NULL)
			continue;   /* valueFrom: Secret values are added by pods.c */
		x = translate_expand(val, env);
		p = translate_path(x, ctx->mounts, ctx->nmounts);
		buf_addf(&b, "%s=%s", name, p);
		free(x);
		free(p);
		vec_add(&out, buf_detach(&b, NULL));
	}
	if (out.v == NULL)
		out.v = xcalloc(1, sizeof(char *));
	return out.v;
}

int
translate_container(const cJSON *c, const struct translate_ctx *ctx,
    struct translated *out, struct llmd_err *e)
{
	size_t n, skip = 0;
	char **args = command_line(c, &n);
	struct vec v = { NULL, 0 };
	const char *img = jstr(c, "image") ? jstr(c, "image") : "(no image)";
	const char *wd = jstr(c, "workingDir");
	int saw_host = 0;

	memset(out, 0, sizeof(*out));
	if (translate_is_scheduler(c)) {
		out->kind = PROC_SKIP;
		strv_free(args);
		return 0;
	}
	if (translate_is_sidecar(c)) {
		if (ctx->router_path == NULL) {
			strv_free(args);
			return err_set(e, -ENOTSUP, NULL, "container %s (image %s): llmd-router has "
			    "no sidecar mode in this build, so prefill/decode pods cannot run yet",
			    jstr(c, "name") ? jstr(c, "name") : "?", img);
		}
		out->kind = PROC_SIDECAR;
		vec_add(&v, xstrdup(ctx->router_path));
		vec_add(&v, xstrdup("sidecar"));
		skip = n > 0 && strcmp(base_name(args[0]), "llm-d-routing-sidecar") == 0 ? 1 : 0;
		copy_flags(&v, args, skip, n, ctx, 0, &saw_host);
	} else if (is_engine(c, args, n, &skip)) {
		const char *model = NULL;
		size_t i;
		struct vec rest = { NULL, 0 };
		char **tmp;

		out->kind = PROC_ENGINE;
		/* The model: the positional after "serve", or --model. */
		if (skip < n && args[skip][0] != '-') {
			model = args[skip];
			skip++;
		}
		for (i = skip; i < n; i++) {
			if (flag_is(args[i], "--model")) {
				if (args[i][7] == '=')
					model = args[i] + 8;
				else if (i + 1 < n)
					model = args[++i];
				continue;
			}
			vec_add(&rest, xstrdup(args[i]));
		}
		if (model == NULL) {
			strv_free(args);
			strv_free(rest.v);
			return err_set(e, -EINVAL, NULL, "container %s (image %s): no model "
			    "(expected `vllm serve MODEL` or --model)",
			    jstr(c, "name") ? jstr(c, "name") : "?", img);
		}
		vec_add(&v, xstrdup(ctx->engine_path));
		vec_add(&v, xstrdup("serve"));
		vec_add(&v, translate_path(model, ctx->mounts, ctx->nmounts));
		tmp = rest.v ? rest.v : NULL;
		copy_flags(&v, tmp, 0, rest.n, ctx, 1, &saw_host);
		strv_free(rest.v);
		if (!saw_host && ctx->host) {
			vec_add(&v, xstrdup("--host"));
			vec_add(&v, xstrdup(ctx->host));
		}
		{
			/* No --port at all: vLLM's default is 8000; ours is allocated. */
			int has_port = 0;

			for (i = 0; i < v.n; i++)
				if (strcmp(v.v[i], "--port") == 0)
					has_port = 1;
			if (!has_port) {
				char num[16];

				snprintf(num, sizeof(num), "%d", ctx->port);
				vec_add(&v, xstrdup("--port"));
				vec_add(&v, xstrdup(num));
			}
		}
	} else if (n > 0 && on_path(args[0])) {
		size_t i;

		out->kind = PROC_HOST;
		for (i = 0; i < n; i++)
			vec_add(&v, translate_path(args[i], ctx->mounts, ctx->nmounts));
	} else {
		int rc = err_set(e, -ENOTSUP, NULL, "container %s: image %s cannot run on this "
		    "host (not a vLLM or routing-sidecar image, and %s%s%s is not an executable "
		    "here)", jstr(c, "name") ? jstr(c, "name") : "?", img,
		    n ? "\"" : "no command", n ? args[0] : "", n ? "\"" : "");

		strv_free(args);
		return rc;
	}
	strv_free(args);
	out->argv = v.v;
	out->env = container_env(c, ctx);
	out->cwd = wd ? translate_path(wd, ctx->mounts, ctx->nmounts) : NULL;
	return 0;
}

void
translated_release(struct translated *t)
{
	strv_free(t->argv);
	strv_free(t->env);
	free(t->cwd);
	memset(t, 0, sizeof(*t));
}
