/*
 * daemon/api-reply.c - JSON replies and Kubernetes Status error bodies.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api-internal.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/util.h"

void
api_reply_json(struct http_req *req, int code, const cJSON *obj)
{
	struct buf b = BUF_INIT;

	json_print_compact(obj, &b);
	buf_addch(&b, '\n');
	http_reply_data(req, code, "application/json", b.buf, b.len);
	buf_release(&b);
}

static void
add_cause(cJSON *causes, const char *field, const char *msg, size_t msglen)
{
	cJSON *c = cJSON_CreateObject();
	char *m = xstrndup(msg, msglen);

	cJSON_AddStringToObject(c, "reason", "FieldValueInvalid");
	cJSON_AddStringToObject(c, "message", m);
	cJSON_AddStringToObject(c, "field", field);
	cJSON_AddItemToArray(causes, c);
	free(m);
}

/* Splits "first msg; field2: msg2; field3: msg3" into causes. */
static void
add_causes(cJSON *details, const struct llmd_err *e)
{
	cJSON *causes = cJSON_AddArrayToObject(details, "causes");
	const char *p = e->msg, *sep;
	int first = 1;

	for (;;) {
		size_t len;

		sep = strstr(p, "; ");
		len = sep ? (size_t)(sep - p) : strlen(p);
		if (first) {
			add_cause(causes, e->field, p, len);
			first = 0;
		} else {
			const char *colon = memchr(p, ':', len);
			char *f;

			if (colon && colon[1] == ' ') {
				f = xstrndup(p, (size_t)(colon - p));
				add_cause(causes, f, colon + 2, len - (size_t)(colon + 2 - p));
				free(f);
			} else {
				add_cause(causes, "", p, len);
			}
		}
		if (sep == NULL)
			break;
		p = sep + 2;
	}
}

void
api_reply_status(struct http_req *req, int code, const char *reason,
    const char *message, const struct api_resource *r, const char *name,
    const struct llmd_err *e)
{
	cJSON *st = cJSON_CreateObject(), *details;
	struct buf b = BUF_INIT;

	cJSON_AddStringToObject(st, "kind", "Status");
	cJSON_AddStringToObject(st, "apiVersion", "v1");
	cJSON_AddObjectToObject(st, "metadata");
	cJSON_AddStringToObject(st, "status", "Failure");
	cJSON_AddStringToObject(st, "message", message);
	cJSON_AddStringToObject(st, "reason", reason);
	details = cJSON_AddObjectToObject(st, "details");
	if (name)
		cJSON_AddStringToObject(details, "name", name);
	if (r) {
		if (*r->group)
			cJSON_AddStringToObject(details, "group", r->group);
		cJSON_AddStringToObject(details, "kind", r->plural);
	}
	if (e && e->field[0])
		add_causes(details, e);
	cJSON_AddNumberToObject(st, "code", code);
	json_print_compact(st, &b);
	buf_addch(&b, '\n');
	cJSON_Delete(st);
	http_reply_data(req, code, "application/json", b.buf, b.len);
	buf_release(&b);
}

void
api_reply_err(struct api_call *c, int rc, const struct llmd_err *e)
{
	const struct api_resource *r = c->res;
	char what[300], msg[1200];
	const char *name = c->name;

	if (r)
		snprintf(what, sizeof(what), "%s%s%s", r->plural, *r->group ? "." : "",
		    r->group);
	else
		snprintf(what, sizeof(what), "object");
	switch (rc) {
	case -ENOENT:
		snprintf(msg, sizeof(msg), "%s \"%s\" not found", what, name ? name : "");
		api_reply_status(c->req, 404, "NotFound", msg, r, name, NULL);
		return;
	case -EEXIST:
		snprintf(msg, sizeof(msg), "%s \"%s\" already exists", what,
		    name ? name : "");
		api_reply_status(c->req, 409, "AlreadyExists", msg, r, name, NULL);
		return;
	case -ESTALE:
		snprintf(msg, sizeof(msg), "Operation cannot be fulfilled on %s \"%s\": "
		    "the object has been modified; please apply your changes to the "
		    "latest version and try again", what, name ? name : "");
		api_reply_status(c->req, 409, "Conflict", msg, r, name, NULL);
		return;
	case -EINVAL:
		/* LLMInferenceService.serving.kserve.io "x" is invalid: field: msg */
		if (r)
			snprintf(what, sizeof(what), "%s%s%s", r->kind, *r->group ? "." : "",
			    r->group);
		if (e && e->field[0])
			snprintf(msg, sizeof(msg), "%s \"%s\" is invalid: %s: %s", what,
			    name ? name : "", e->field, e->msg);
		else
			snprintf(msg, sizeof(msg), "%s \"%s\" is invalid: %s", what,
			    name ? name : "", e ? e->msg : "");
		api_reply_status(c->req, 422, "Invalid", msg, r, name, e);
		return;
	case -EBADMSG:
		snprintf(msg, sizeof(msg), "%s%s%s", e && e->field[0] ? e->field : "",
		    e && e->field[0] ? ": " : "", e ? e->msg : "bad request");
		api_reply_status(c->req, 400, "BadRequest", msg, r, name, NULL);
		return;
	case -E2BIG:
		api_reply_status(c->req, 413, "RequestEntityTooLarge",
		    e ? e->msg : "request entity too large", r, name, NULL);
		return;
	case -EPERM:
		api_reply_status(c->req, 405, "MethodNotAllowed",
		    e ? e->msg : "method not allowed", r, name, NULL);
		return;
	case -ERANGE:
		api_reply_status(c->req, 410, "Expired", e ? e->msg : "too old resource version",
		    r, name, NULL);
		return;
	case -EPROTONOSUPPORT:
		api_reply_status(c->req, 415, "UnsupportedMediaType",
		    e ? e->msg : "unsupported media type", r, name, NULL);
		return;
	default:
		snprintf(msg, sizeof(msg), "internal error: %s", e && e->msg[0] ? e->msg :
		    strerror(-rc));
		api_reply_status(c->req, 500, "InternalError", msg, r, name, NULL);
		return;
	}
}
