/*
 * daemon/api-verbs.c - GET, LIST (label/field selectors), WATCH, POST, PUT,
 * PATCH (merge patch) and DELETE on the store, with the generic object
 * checks (names, namespaces, kinds, labels) and the LLMInferenceService
 * validation of daemon/reconcile.h. Every write is committed (fsync) before
 * the reply is sent, then the watch hub is pumped; writes that arrive
 * together share one commit (group commit), each with its own result.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "daemon/api-internal.h"
#include "daemon/reconcile.h"
#include "daemon/store.h"
#include "daemon/watch.h"
#include "lib/json.h"
#include "lib/util.h"
#include "lib/workpool.h"

static const char *
qparam(struct api_call *c, const char *k)
{
	return http_req_query(c->req, k);
}

static int
is_dns_label(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return 0;
	for (i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
		    s[i] == '-'))
			return 0;
	return 1;
}

/* DNS-1123 subdomain: dot-separated labels, <= 253. */
static int
is_dns_subdomain(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
		    s[i] == '-' || s[i] == '.'))
			return 0;
	return isalnum((unsigned char)s[0]) && isalnum((unsigned char)s[n - 1]);
}

static int
check_string_map(const cJSON *m, const char *field, struct llmd_err *e)
{
	const cJSON *v;

	if (m == NULL || cJSON_IsNull(m))
		return 0;
	if (!cJSON_IsObject(m))
		return err_set(e, -EINVAL, field, "must be an object of strings");
	cJSON_ArrayForEach(v, m) {
		if (!cJSON_IsString(v))
			return err_set(e, -EINVAL, field, "value of \"%s\" must be a string",
			    v->string);
		if (strlen(v->string) == 0 || strlen(v->string) > 316)
			return err_set(e, -EINVAL, field, "invalid key \"%s\"", v->string);
	}
	return 0;
}

/* Secret: stringData is folded into data (base64), data must be base64. */
static int
fold_secret(cJSON *obj, struct llmd_err *e)
{
	cJSON *sd = cJSON_GetObjectItemCaseSensitive(obj, "stringData"), *data, *v;

	data = cJSON_GetObjectItemCaseSensitive(obj, "data");
	if (data && !cJSON_IsObject(data) && !cJSON_IsNull(data))
		return err_set(e, -EINVAL, "data", "must be an object of base64 strings");
	cJSON_ArrayForEach(v, data) {
		size_t n;

		if (!cJSON_IsString(v))
			return err_set(e, -EINVAL, "data", "value of \"%s\" must be a "
			    "base64 string", v->string);
		n = strlen(v->valuestring);
		if (n % 4 != 0 || strspn(v->valuestring, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789+/=") != n)
			return err_set(e, -EINVAL, "data", "value of \"%s\" is not "
			    "valid base64", v->string);
	}
	if (sd == NULL)
		return 0;
	if (!cJSON_IsObject(sd))
		return err_set(e, -EINVAL, "stringData", "must be an object of strings");
	if (!cJSON_IsObject(data)) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "data");
		data = cJSON_AddObjectToObject(obj, "data");
	}
	cJSON_ArrayForEach(v, sd) {
		size_t n;
		unsigned char *b64;

		if (!cJSON_IsString(v))
			return err_set(e, -EINVAL, "stringData", "value of \"%s\" must be a "
			    "string", v->string);
		n = strlen(v->valuestring);
		b64 = xmalloc(4 * ((n + 2) / 3) + 1);
		EVP_EncodeBlock(b64, (const unsigned char *)v->valuestring, (int)n);
		cJSON_DeleteItemFromObjectCaseSensitive(data, v->string);
		cJSON_AddStringToObject(data, v->string, (const char *)b64);
		free(b64);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "stringData");
	return 0;
}

/*
 * Generic checks of a submitted object against the request; fills in
 * apiVersion, kind and metadata.namespace. -EBADMSG (400) for mismatches
 * with the URL, -EINVAL (422) for bad fields.
 */
static int
check_object(struct api_call *c, cJSON *obj, struct llmd_err *e)
{
	const struct api_resource *r = c->res;
	char av[128];
	cJSON *md, *v;
	const char *name;

	if (!cJSON_IsObject(obj))
		return err_set(e, -EBADMSG, "", "the request body must be a JSON or YAML "
		    "object");
	api_resource_api_version(r, av, sizeof(av));
	v = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
	if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, av) != 0))
		return err_set(e, -EBADMSG, "apiVersion", "expected \"%s\" for %s", av,
		    r->plural);
	v = cJSON_GetObjectItemCaseSensitive(obj, "kind");
	if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, r->kind) != 0))
		return err_set(e, -EBADMSG, "kind", "expected \"%s\" for %s", r->kind,
		    r->plural);
	/* apiVersion and kind first, as Kubernetes prints them. */
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "kind");
	cJSON_InsertItemInArray(obj, 0, cJSON_CreateString(r->kind));
	cJSON_InsertItemInArray(obj, 0, cJSON_CreateString(av));
	obj->child->string = xstrdup("apiVersion");
	obj->child->next->string = xstrdup("kind");
	md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	if (md == NULL)
		md = cJSON_AddObjectToObject(obj, "metadata");
	if (!cJSON_IsObject(md))
		return err_set(e, -EINVAL, "metadata", "must be an object");
	v = cJSON_GetObjectItemCaseSensitive(md, "namespace");
	if (v && !cJSON_IsString(v))
		return err_set(e, -EINVAL, "metadata.namespace", "must be a string");
	if (r->flags & RES_NAMESPACED) {
		if (v && strcmp(v->valuestring, c->ns) != 0)
			return err_set(e, -EBADMSG, "metadata.namespace", "the namespace "
			    "of the provided object does not match the namespace sent "
			    "on the request");
		if (!v)
			cJSON_AddStringToObject(md, "namespace", c->ns);
	} else if (v) {
		cJSON_DeleteItemFromObjectCaseSensitive(md, "namespace");
	}
	v = cJSON_GetObjectItemCaseSensitive(md, "name");
	if (v && !cJSON_IsString(v))
		return err_set(e, -EINVAL, "metadata.name", "must be a string");
	if (c->name) {
		if (v && strcmp(v->valuestring, c->name) != 0)
			return err_set(e, -EBADMSG, "metadata.name", "the name of the object "
			    "(%s) does not match the name on the URL (%s)", v->valuestring,
			    c->name);
		if (!v)
			cJSON_AddStringToObject(md, "name", c->name);
	}
	name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
	if (name == NULL) {
		v = cJSON_GetObjectItemCaseSensitive(md, "generateName");
		if (!cJSON_IsString(v) || !is_dns_subdomain(v->valuestring) ||
		    strlen(v->valuestring) > 200)
			return err_set(e, -EINVAL, "metadata.name", "name or generateName "
			    "is required");
	} else if (!is_dns_subdomain(name)) {
		return err_set(e, -EINVAL, "metadata.name", "a lowercase RFC 1123 "
		    "subdomain must consist of lower case alphanumeric characters, '-' "
		    "or '.', and must start and end with an alphanumeric character");
	}
	if (check_string_map(cJSON_GetObjectItemCaseSensitive(md, "labels"),
	    "metadata.labels", e) < 0 ||
	    check_string_map(cJSON_GetObjectItemCaseSensitive(md, "annotations"),
	    "metadata.annotations", e) < 0)
		return -EINVAL;
	v = cJSON_GetObjectItemCaseSensitive(md, "ownerReferences");
	if (v && !cJSON_IsArray(v))
		return err_set(e, -EINVAL, "metadata.ownerReferences", "must be an array");
	v = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	if (v && !cJSON_IsObject(v) && !cJSON_IsNull(v))
		return err_set(e, -EINVAL, "spec", "must be an object");
	v = cJSON_GetObjectItemCaseSensitive(obj, "status");
	if (v && !cJSON_IsObject(v) && !cJSON_IsNull(v))
		return err_set(e, -EINVAL, "status", "must be an object");
	if (strcmp(r->plural, "secrets") == 0)
		return fold_secret(obj, e);
	return 0;
}

/* Resource-specific validation (reconcile.h for the serving kinds). */
static int
validate(struct api_call *c, const cJSON *obj, const cJSON *old, struct llmd_err *e)
{
	int rc = 0;

	if (strcmp(c->res->plural, "llminferenceservices") == 0)
		rc = llmisvc_validate(obj, old, e);
	else if (strcmp(c->res->plural, "llminferenceserviceconfigs") == 0)
		rc = llmisvcconfig_validate(obj, e);
	if (rc == -ENOSYS)
		rc = 0;
	return rc < 0 ? -EINVAL : 0;
}

/* Reads and parses the request body; replies on failure. */
static cJSON *
read_body(struct api_call *c)
{
	size_t n = 0;
	const char *p = http_req_body(c->req, &n);
	const char *ct = http_req_header(c->req, "Content-Type");
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *obj = NULL;
	int rc;

	if (n > c->api->max_body) {
		err_set(&e, -E2BIG, "", "the request body is %zu bytes, the limit is %zu",
		    n, c->api->max_body);
		api_reply_err(c, -E2BIG, &e);
		return NULL;
	}
	rc = api_body_parse(p, n, ct, &obj, &e);
	if (rc < 0) {
		api_reply_err(c, -EBADMSG, &e);
		return NULL;
	}
	return obj;
}

static int
writable(struct api_call *c)
{
	struct llmd_err e = LLMD_ERR_INIT;

	if ((c->res->flags & RES_WRITABLE) || c->status_sub)
		return 1;
	err_set(&e, -EPERM, "", "%s are derived by llmd and read-only", c->res->plural);
	api_reply_err(c, -EPERM, &e);
	return 0;
}

/* ---- writes: a job on the workpool, the reply from its done callback ---- */

enum write_op { OP_CREATE, OP_UPDATE, OP_DELETE };

struct write_job {
	struct api *api;
	struct http_req *req;   /* finished in job_done even if the client left */
	const struct api_resource *res;
	char *ns, *name;
	enum write_op op;
	int flags;
	int64_t precond;   /* DELETE: resourceVersion that must match; 0 none */
	cJSON *obj;
	cJSON *out;
	int rc;
	struct llmd_err e;
	struct write_job *next;  /* in api->wq_* or its group */
};

static void
job_work(void *arg)
{
	struct write_job *j = arg;
	struct store *s = j->api->store;

	switch (j->op) {
	case OP_CREATE:
		j->rc = store_create(s, j->res->plural, j->obj, &j->out, &j->e);
		break;
	case OP_UPDATE:
		j->rc = store_update(s, j->res->plural, j->obj, j->flags, &j->out, NULL,
		    &j->e);
		break;
	case OP_DELETE:
		j->rc = store_delete(s, j->res->plural, j->ns, j->name, j->precond, &j->out,
		    &j->e);
		break;
	}
}

static void
job_done(void *arg)
{
	struct write_job *j = arg;

	{
		if (j->rc < 0) {
			struct api_call c;

			memset(&c, 0, sizeof(c));
			c.api = j->api;
			c.req = j->req;
			c.res = j->res;
			c.ns = j->ns;
			c.name = j->name;
			api_reply_err(&c, j->rc, &j->e);
		} else {
			api_reply_json(j->req, j->op == OP_CREATE ? 201 : 200, j->out);
		}
	}
	if (j->rc >= 0)
		watch_hub_pump(j->api->hub);
	cJSON_Delete(j->obj);
	cJSON_Delete(j->out);
	free(j->ns);
	free(j->name);
	free(j);
}

/*
 * Group commit: while one group of writes is on the workpool, new writes
 * queue in api->wq_*; the next group takes all of them into one store batch
 * (one transaction, one fsync), then replies to each with its own result.
 */
struct write_group {
	struct api *api;
	struct write_job *jobs;
};

static void flush_writes(struct api *a);

static void
group_work(void *arg)
{
	struct write_group *g = arg;
	struct llmd_err e = LLMD_ERR_INIT;
	struct write_job *j;
	int batched = store_batch_begin(g->api->store, &e) == 0, rc;

	for (j = g->jobs; j; j = j->next)
		job_work(j);
	if (batched && (rc = store_batch_end(g->api->store, &e)) < 0) {
		/* Nothing of the group is stored: each write fails with the commit. */
		for (j = g->jobs; j; j = j->next) {
			if (j->rc < 0)
				continue;
			j->rc = rc;
			j->e = e;
			cJSON_Delete(j->out);
			j->out = NULL;
		}
	}
}

static void
group_done(void *arg)
{
	struct write_group *g = arg;
	struct api *a = g->api;
	struct write_job *j, *next;

	for (j = g->jobs; j; j = next) {
		next = j->next;
		job_done(j);
	}
	free(g);
	a->wq_busy = 0;
	flush_writes(a);
}

static void
flush_writes(struct api *a)
{
	struct write_group *g;

	if (a->wq_busy || a->wq_head == NULL)
		return;
	g = xcalloc(1, sizeof(*g));
	g->api = a;
	g->jobs = a->wq_head;
	a->wq_head = a->wq_tail = NULL;
	a->wq_busy = 1;
	workpool_run(a->wp, group_work, group_done, g);
}

/* Takes obj. The reply is sent once the transaction committed. */
static void
submit_write(struct api_call *c, enum write_op op, cJSON *obj, int flags,
    int64_t precond)
{
	struct write_job *j = xcalloc(1, sizeof(*j));
	const char *n = c->name;

	j->api = c->api;
	j->req = c->req;
	j->res = c->res;
	j->ns = c->ns ? xstrdup(c->ns) : NULL;
	if (obj && !n)
		n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name"));
	j->name = n ? xstrdup(n) : NULL;
	j->op = op;
	j->obj = obj;
	j->flags = flags;
	j->precond = precond;
	if (c->api->wq_tail)
		c->api->wq_tail->next = j;
	else
		c->api->wq_head = j;
	c->api->wq_tail = j;
	flush_writes(c->api);
}

static void
do_get(struct api_call *c)
{
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *o = NULL;
	int rc = store_get(c->api->store, c->res->plural, c->ns, c->name, &o, &e);

	if (rc < 0) {
		api_reply_err(c, rc, &e);
		return;
	}
	api_reply_json(c->req, 200, o);
	cJSON_Delete(o);
}

static int
parse_selectors(struct api_call *c, struct selector **ls, struct selector **fs)
{
	struct llmd_err e = LLMD_ERR_INIT;
	const char *l = qparam(c, "labelSelector"), *f = qparam(c, "fieldSelector");

	*ls = *fs = NULL;
	if (l && *l && selector_parse(l, ls, &e) < 0) {
		api_reply_err(c, -EBADMSG, &e);
		return -1;
	}
	if (f && *f && selector_parse_fields(f, fs, &e) < 0) {
		selector_free(*ls);
		api_reply_err(c, -EBADMSG, &e);
		return -1;
	}
	return 0;
}

static void
do_list(struct api_call *c)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct selector *ls, *fs;
	const char *w = qparam(c, "watch"), *rvq = qparam(c, "resourceVersion");
	cJSON *items = NULL, *list, *it, *next, *md;
	int64_t rv = 0;
	char av[128], kind[160], rvs[24];
	int rc;

	if (parse_selectors(c, &ls, &fs) < 0)
		return;
	if (w && (strcmp(w, "true") == 0 || strcmp(w, "1") == 0)) {
		long n = 0, to = 0;
		const char *ts = qparam(c, "timeoutSeconds");
		const char *bm = qparam(c, "allowWatchBookmarks");

		if ((rvq && *rvq && parse_long(rvq, 0, LONG_MAX, &n) < 0) ||
		    (ts && parse_long(ts, 0, 86400 * 7, &to) < 0)) {
			selector_free(ls);
			selector_free(fs);
			err_set(&e, -EBADMSG, "resourceVersion", "must be a non-negative "
			    "integer");
			api_reply_err(c, -EBADMSG, &e);
			return;
		}
		rc = watch_start(c->api->hub, c->req, c->res, c->ns, ls, fs, n, (int)to,
		    bm && strcmp(bm, "true") == 0, &e);
		if (rc < 0)
			api_reply_err(c, rc, &e);
		return;
	}
	rc = store_list(c->api->store, c->res->plural, c->ns, &items, &rv, &e);
	if (rc < 0) {
		selector_free(ls);
		selector_free(fs);
		api_reply_err(c, rc, &e);
		return;
	}
	for (it = items->child; it; it = next) {
		next = it->next;
		if (!selector_match(ls, it) || !selector_match(fs, it))
			cJSON_Delete(cJSON_DetachItemViaPointer(items, it));
	}
	selector_free(ls);
	selector_free(fs);
	list = cJSON_CreateObject();
	cJSON_AddStringToObject(list, "apiVersion", api_resource_api_version(c->res,
	    av, sizeof(av)));
	snprintf(kind, sizeof(kind), "%sList", c->res->kind);
	cJSON_AddStringToObject(list, "kind", kind);
	md = cJSON_AddObjectToObject(list, "metadata");
	snprintf(rvs, sizeof(rvs), "%" PRId64, rv);
	cJSON_AddStringToObject(md, "resourceVersion", rvs);
	cJSON_AddItemToObject(list, "items", items);
	api_reply_json(c->req, 200, list);
	cJSON_Delete(list);
}

static void
do_create(struct api_call *c)
{
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *obj;
	int rc;

	if (!writable(c) || (obj = read_body(c)) == NULL)
		return;
	if ((rc = check_object(c, obj, &e)) < 0 || (rc = validate(c, obj, NULL, &e)) < 0) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name"));

		if (n && !c->name)
			c->name = xstrdup(n);
		api_reply_err(c, rc, &e);
		cJSON_Delete(obj);
		return;
	}
	submit_write(c, OP_CREATE, obj, 0, 0);
}

/* PUT and PATCH both end here with the full new object (taken). */
static void
update(struct api_call *c, cJSON *obj, const cJSON *old)
{
	struct llmd_err e = LLMD_ERR_INIT;
	int rc;

	if ((rc = check_object(c, obj, &e)) < 0 ||
	    (!c->status_sub && (rc = validate(c, obj, old, &e)) < 0)) {
		api_reply_err(c, rc, &e);
		cJSON_Delete(obj);
		return;
	}
	submit_write(c, OP_UPDATE, obj, c->status_sub ? STORE_STATUS : 0, 0);
}

static void
do_put(struct api_call *c)
{
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *obj, *old = NULL;
	int rc;

	if (!writable(c) || (obj = read_body(c)) == NULL)
		return;
	if ((rc = store_get(c->api->store, c->res->plural, c->ns, c->name, &old, &e)) < 0) {
		api_reply_err(c, rc, &e);
		cJSON_Delete(obj);
		return;
	}
	update(c, obj, old);
	cJSON_Delete(old);
}

static void
do_patch(struct api_call *c)
{
	struct llmd_err e = LLMD_ERR_INIT;
	const char *ct = http_req_header(c->req, "Content-Type");
	cJSON *patch, *old = NULL, *obj, *md, *rvp;
	int rc;

	if (ct && strncasecmp(ct, "application/merge-patch+json", 28) != 0 &&
	    strncasecmp(ct, "application/json", 16) != 0) {
		err_set(&e, -EPROTONOSUPPORT, "", "the body of the request was in an "
		    "unknown format - accepted media types include: "
		    "application/merge-patch+json, application/json");
		api_reply_err(c, -EPROTONOSUPPORT, &e);
		return;
	}
	if (!writable(c) || (patch = read_body(c)) == NULL)
		return;
	if (!cJSON_IsObject(patch)) {
		err_set(&e, -EBADMSG, "", "a merge patch must be a JSON object");
		api_reply_err(c, -EBADMSG, &e);
		cJSON_Delete(patch);
		return;
	}
	if ((rc = store_get(c->api->store, c->res->plural, c->ns, c->name, &old, &e)) < 0) {
		api_reply_err(c, rc, &e);
		cJSON_Delete(patch);
		return;
	}
	obj = json_merge_patch(cJSON_Duplicate(old, 1), patch);
	md = cJSON_GetObjectItemCaseSensitive(patch, "metadata");
	rvp = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
	if (rvp == NULL) {
		/*
		 * Unconditional patch: no precondition, so a status write of the
		 * reconciler between our read and the commit is no conflict (the
		 * store keeps the stored status on spec writes).
		 */
		cJSON_DeleteItemFromObjectCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion");
	}
	update(c, obj, old);
	cJSON_Delete(old);
	cJSON_Delete(patch);
}

static void
do_delete(struct api_call *c)
{
	size_t n = 0;
	const char *body;
	int64_t precond = 0;

	if (!(c->res->flags & RES_DELETABLE) && !writable(c))
		return;
	/* DeleteOptions body: {"preconditions":{"resourceVersion":"N"}}. */
	body = http_req_body(c->req, &n);
	if (n > 0) {
		struct llmd_err e = LLMD_ERR_INIT;
		cJSON *opts = NULL;
		const char *rv;

		if (api_body_parse(body, n, http_req_header(c->req, "Content-Type"),
		    &opts, &e) < 0) {
			api_reply_err(c, -EBADMSG, &e);
			return;
		}
		rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(opts, "preconditions"), "resourceVersion"));
		if (rv) {
			long l;

			if (parse_long(rv, 1, LONG_MAX, &l) < 0) {
				err_set(&e, -EBADMSG, "preconditions.resourceVersion",
				    "must be a resource version");
				cJSON_Delete(opts);
				api_reply_err(c, -EBADMSG, &e);
				return;
			}
			precond = l;
		}
		cJSON_Delete(opts);
	}
	submit_write(c, OP_DELETE, NULL, 0, precond);
}

static void
method_not_allowed(struct api_call *c)
{
	struct llmd_err e = LLMD_ERR_INIT;

	err_set(&e, -EPERM, "", "the server does not allow this method on the "
	    "requested resource");
	api_reply_err(c, -EPERM, &e);
}

void
api_verbs_dispatch(struct api_call *c)
{
	if (c->ns && !is_dns_label(c->ns, 63)) {
		struct llmd_err e = LLMD_ERR_INIT;

		err_set(&e, -EBADMSG, "metadata.namespace", "invalid namespace \"%s\"", c->ns);
		api_reply_err(c, -EBADMSG, &e);
		return;
	}
	/* Take ownership of the name so do_create can replace it. */
	if (c->name)
		c->name = xstrdup(c->name);
	if (strcmp(c->method, "GET") == 0 || strcmp(c->method, "HEAD") == 0) {
		if (c->name)
			do_get(c);
		else
			do_list(c);
	} else if (strcmp(c->method, "POST") == 0 && !c->name && !c->status_sub) {
		do_create(c);
	} else if (strcmp(c->method, "PUT") == 0 && c->name) {
		do_put(c);
	} else if (strcmp(c->method, "PATCH") == 0 && c->name) {
		do_patch(c);
	} else if (strcmp(c->method, "DELETE") == 0 && c->name && !c->status_sub) {
		do_delete(c);
	} else {
		method_not_allowed(c);
	}
	free(c->name);
	c->name = NULL;
}

void
api_verbs_namespaces(struct api_call *c)
{
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *names = NULL, *it, *list, *items;
	int rc;

	if (strcmp(c->method, "GET") != 0 && strcmp(c->method, "HEAD") != 0) {
		method_not_allowed(c);
		return;
	}
	if ((rc = store_namespaces(c->api->store, &names, &e)) < 0) {
		api_reply_err(c, rc, &e);
		return;
	}
	list = cJSON_CreateObject();
	cJSON_AddStringToObject(list, "apiVersion", "v1");
	cJSON_AddStringToObject(list, "kind", "NamespaceList");
	cJSON_AddObjectToObject(list, "metadata");
	items = cJSON_AddArrayToObject(list, "items");
	cJSON_ArrayForEach(it, names) {
		cJSON *ns = cJSON_CreateObject();

		cJSON_AddStringToObject(ns, "apiVersion", "v1");
		cJSON_AddStringToObject(ns, "kind", "Namespace");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(ns, "metadata"), "name",
		    it->valuestring);
		cJSON_AddStringToObject(cJSON_AddObjectToObject(ns, "status"), "phase",
		    "Active");
		if (c->name && strcmp(c->name, it->valuestring) == 0) {
			api_reply_json(c->req, 200, ns);
			cJSON_Delete(ns);
			goto out;
		}
		cJSON_AddItemToArray(items, ns);
	}
	if (c->name) {
		char msg[300];

		snprintf(msg, sizeof(msg), "namespaces \"%s\" not found", c->name);
		api_reply_status(c->req, 404, "NotFound", msg, NULL, c->name, NULL);
	} else {
		api_reply_json(c->req, 200, list);
	}
out:
	cJSON_Delete(list);
	cJSON_Delete(names);
}
