/*
 * agent/control.c - talking to the daemon: registration with the join token
 * (the credential is kept in DATA/credential so restarts reuse it),
 * heartbeats, the list + watch of the pods assigned to this node, and pod
 * status patches. All calls but the registration are asynchronous on the
 * agent's loop; a failing call is retried on the next timer tick.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "agent/agent.h"
#include "lib/buf.h"
#include "lib/http_client.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

static char *
read_first_line(const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	n = strcspn(line, "\r\n \t");
	line[n] = '\0';
	return n ? xstrdup(line) : NULL;
}

static int
register_with(struct agent *a, const char *token, struct llmd_err *e)
{
	cJSON *body = cJSON_CreateObject(), *labels, *resp = NULL;
	struct buf b = BUF_INIT, url = BUF_INIT, auth = BUF_INIT;
	struct http_result res;
	const char *hdrs[5];
	int rc;

	cJSON_AddStringToObject(body, "nodeName", a->node);
	if (a->address)
		cJSON_AddStringToObject(body, "address", a->address);
	if (a->agent_url)
		cJSON_AddStringToObject(body, "agentUrl", a->agent_url);
	labels = cJSON_AddObjectToObject(body, "labels");
	if (a->labels) {
		char *copy = xstrdup(a->labels), *save = NULL, *kv;

		for (kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(kv, '=');

			if (eq) {
				*eq = '\0';
				cJSON_AddStringToObject(labels, kv, eq + 1);
			}
		}
		free(copy);
	}
	cJSON_AddItemToObject(body, "gpus", gpu_to_json(a->gpus, a->ngpus));
	json_print_compact(body, &b);
	cJSON_Delete(body);
	buf_addf(&url, "%s/agent/v1/register", a->server);
	buf_addf(&auth, "Bearer %s", token);
	hdrs[0] = "Authorization";
	hdrs[1] = auth.buf;
	hdrs[2] = "Content-Type";
	hdrs[3] = "application/json";
	hdrs[4] = NULL;
	rc = http_fetch("POST", url.buf, hdrs, b.buf, b.len, 10000, &res, e);
	if (rc == 0 && res.status != 200) {
		rc = err_set(e, res.status == 401 ? -EACCES : -EIO, NULL,
		    "registration refused (HTTP %d): %s", res.status, res.body.buf);
	} else if (rc == 0 && (json_parse(res.body.buf, res.body.len, &resp, NULL) < 0 ||
	    !cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(resp, "credential")))) {
		rc = err_set(e, -EPROTO, NULL, "registration: unexpected answer");
	} else if (rc == 0) {
		free(a->credential);
		a->credential = xstrdup(cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(resp, "credential")));
	}
	cJSON_Delete(resp);
	http_result_release(&res);
	buf_release(&b);
	buf_release(&url);
	buf_release(&auth);
	return rc;
}

static int
do_register(struct agent *a, int max_tries, struct llmd_err *e)
{
	char path[4096];
	char *token;
	int rc, tries;
	FILE *f;

	token = a->token_file ? read_first_line(a->token_file) : NULL;
	if (token == NULL)
		return err_set(e, -ENOENT, "--token-file", "%s: no join token",
		    a->token_file ? a->token_file : "(none)");
	/* The daemon may be starting: retry for a while. */
	for (tries = 0;; tries++) {
		rc = register_with(a, token, e);
		if (rc == 0 || rc == -EACCES || tries + 1 >= max_tries)
			break;
		usleep(200 * 1000);
	}
	free(token);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/credential", a->data_dir);
	if ((f = fopen(path, "w")) != NULL) {
		fprintf(f, "%s\n", a->credential);
		fclose(f);
	}
	a->registered = 1;
	log_info("registered node %s with %s (%d GPU(s))", a->node, a->server, a->ngpus);
	return 0;
}

int
control_register(struct agent *a, struct llmd_err *e)
{
	/* At startup the daemon may still be coming up: about 10 s of tries. */
	return do_register(a, 50, e);
}

/* ---- heartbeats ---- */

static struct http_client_req *hb_req;

static void
hb_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct agent *a = arg;

	hb_req = NULL;
	if (resp == NULL)
		log_warnx("heartbeat: %s", e ? e->msg : "failed");
	else if (resp->status == 401) {
		struct llmd_err re = LLMD_ERR_INIT;

		/* The daemon forgot us (new store): register again. */
		log_warnx("heartbeat refused; registering again");
		if (do_register(a, 1, &re) < 0)
			log_warnx("register: %s", re.msg);
	}
}

static void
on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	(void)fd;
	(void)what;
	if (hb_req)
		return;
	hb_req = control_request(a, "POST", "/agent/v1/heartbeat", "application/json", "{}", 2,
	    hb_done, a);
}

/* ---- pods: list + watch ---- */

static void
list_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct agent *a = arg;
	cJSON *list = NULL;

	a->list = NULL;
	if (resp == NULL || resp->status != 200) {
		log_warnx("listing pods: %s", resp ? "HTTP error" : e ? e->msg : "failed");
		return;
	}
	if (json_parse(resp->body, resp->body_len, &list, NULL) < 0) {
		log_warnx("listing pods: not JSON");
		return;
	}
	pods_sync(a, cJSON_GetObjectItemCaseSensitive(list, "items"));
	cJSON_Delete(list);
}

void
control_sync_now(struct agent *a)
{
	struct buf path = BUF_INIT;
	char *q;

	if (a->list || a->stopping)
		return;
	q = evhttp_encode_uri(a->node);
	buf_addf(&path, "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", q);
	free(q);
	a->list = control_request(a, "GET", path.buf, NULL, NULL, 0, list_done, a);
	buf_release(&path);
}

static void
on_sync(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	control_sync_now(arg);
}

static void watch_start(struct agent *a);

static void
watch_data(const char *data, size_t len, void *arg)
{
	struct agent *a = arg;

	(void)data;
	(void)len;
	/* Any event: re-list (level-triggered; the list is small). */
	control_sync_now(a);
}

static void
watch_end(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct agent *a = arg;

	(void)resp;
	(void)e;
	a->watch = NULL;
	a->watch_retry_ms = now_ms() + 1000;
}

static void
watch_start(struct agent *a)
{
	static const struct http_stream_cbs cbs = { NULL, watch_data, watch_end };
	struct buf url = BUF_INIT, auth = BUF_INIT;
	const char *hdrs[3];
	char *q;

	q = evhttp_encode_uri(a->node);
	buf_addf(&url, "%s/api/v1/pods?watch=1&fieldSelector=spec.nodeName%%3D%s", a->server, q);
	free(q);
	agent_auth_header(a, &auth);
	hdrs[0] = "Authorization";
	hdrs[1] = auth.buf;
	hdrs[2] = NULL;
	a->watch = http_client_stream(a->hc, "GET", url.buf, hdrs, NULL, 0, &cbs, a, NULL);
	buf_release(&url);
	buf_release(&auth);
}

/* Called from the agent's tick: keeps the watch open. */
static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	(void)fd;
	(void)what;
	if (a->watch == NULL && !a->stopping && now_ms() >= a->watch_retry_ms) {
		watch_start(a);
		control_sync_now(a);
	}
}

static struct event *watchdog;

void
control_start(struct agent *a)
{
	struct timeval hb = { (time_t)(a->t.heartbeat_ms / 1000),
	    (suseconds_t)((a->t.heartbeat_ms % 1000) * 1000) };
	struct timeval sy = { (time_t)(a->t.sync_ms / 1000),
	    (suseconds_t)((a->t.sync_ms % 1000) * 1000) };
	struct timeval wd = { 0, 500 * 1000 };

	a->hb = event_new(a->base, -1, EV_PERSIST, on_heartbeat, a);
	event_add(a->hb, &hb);
	a->sync = event_new(a->base, -1, EV_PERSIST, on_sync, a);
	event_add(a->sync, &sy);
	watchdog = event_new(a->base, -1, EV_PERSIST, on_watchdog, a);
	event_add(watchdog, &wd);
	watch_start(a);
	control_sync_now(a);
}

void
control_stop(struct agent *a)
{
	if (a->watch)
		http_client_cancel(a->watch);
	a->watch = NULL;
	if (a->list)
		http_client_cancel(a->list);
	a->list = NULL;
	if (hb_req)
		http_client_cancel(hb_req);
	hb_req = NULL;
	if (a->hb)
		event_free(a->hb);
	if (a->sync)
		event_free(a->sync);
	if (watchdog)
		event_free(watchdog);
	a->hb = a->sync = watchdog = NULL;
}

/* ---- status ---- */

struct patch {
	struct agent *a;
	char *ns, *name, *uid;
};

static void
patch_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct patch *pt = arg;
	struct pod_rt *p = pods_find(pt->a, pt->ns, pt->name);

	if (p && strcmp(p->uid, pt->uid) == 0) {
		p->reporting = 0;
		if (resp == NULL || (resp->status != 200 && resp->status != 404)) {
			/* Try again on the next tick. */
			free(p->reported);
			p->reported = NULL;
			log_warnx("pod %s/%s: status update failed: %s", pt->ns, pt->name,
			    resp ? "HTTP error" : e ? e->msg : "?");
		}
	}
	free(pt->ns);
	free(pt->name);
	free(pt->uid);
	free(pt);
}

void
control_patch_status(struct agent *a, struct pod_rt *p, const cJSON *status)
{
	cJSON *body = cJSON_CreateObject();
	struct buf b = BUF_INIT, url = BUF_INIT;
	struct patch *pt = xcalloc(1, sizeof(*pt));
	char *qns = evhttp_encode_uri(p->ns), *qn = evhttp_encode_uri(p->name);

	cJSON_AddItemToObject(body, "status", cJSON_Duplicate(status, 1));
	json_print_compact(body, &b);
	cJSON_Delete(body);
	buf_addf(&url, "/api/v1/namespaces/%s/pods/%s/status", qns, qn);
	free(qns);
	free(qn);
	pt->a = a;
	pt->ns = xstrdup(p->ns);
	pt->name = xstrdup(p->name);
	pt->uid = xstrdup(p->uid);
	if (control_request(a, "PATCH", url.buf, "application/merge-patch+json", b.buf, b.len,
	    patch_done, pt) == NULL) {
		p->reporting = 0;
		free(pt->ns);
		free(pt->name);
		free(pt->uid);
		free(pt);
	}
	buf_release(&b);
	buf_release(&url);
}

/* ---- single pods and LWS groups ---- */

struct get_pod {
	void (*cb)(const cJSON *pod, void *arg);
	void *arg;
};

static void
get_pod_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct get_pod *g = arg;
	cJSON *o = NULL;

	(void)e;
	if (resp && resp->status == 200)
		json_parse(resp->body, resp->body_len, &o, NULL);
	g->cb(o, g->arg);
	cJSON_Delete(o);
	free(g);
}

struct http_client_req *
control_get_json(struct agent *a, const char *path, void (*cb)(const cJSON *obj, void *arg),
    void *arg)
{
	struct get_pod *g = xcalloc(1, sizeof(*g));
	struct http_client_req *r;

	g->cb = cb;
	g->arg = arg;
	if ((r = control_request(a, "GET", path, NULL, NULL, 0, get_pod_done, g)) == NULL)
		free(g);
	return r;
}

static void
ignore_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	(void)resp;
	(void)e;
	(void)arg;
}

static void
group_list_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct agent *a = arg;
	cJSON *list = NULL;
	const cJSON *it;

	(void)e;
	if (resp == NULL || resp->status != 200 ||
	    json_parse(resp->body, resp->body_len, &list, NULL) < 0)
		return;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items")) {
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
		const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md,
		    "namespace"));
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
		struct buf url = BUF_INIT;
		char *qns, *qn;

		if (!ns || !name)
			continue;
		qns = evhttp_encode_uri(ns);
		qn = evhttp_encode_uri(name);
		buf_addf(&url, "/api/v1/namespaces/%s/pods/%s", qns, qn);
		free(qns);
		free(qn);
		log_info("LWS group restart: deleting pod %s/%s", ns, name);
		control_request(a, "DELETE", url.buf, NULL, NULL, 0, ignore_done, NULL);
		buf_release(&url);
	}
	cJSON_Delete(list);
}

void
control_delete_group(struct agent *a, const char *ns, const char *group_key)
{
	struct buf url = BUF_INIT;
	char *qns = evhttp_encode_uri(ns), *qk = evhttp_encode_uri(group_key);

	buf_addf(&url, "/api/v1/namespaces/%s/pods?labelSelector="
	    "leaderworkerset.sigs.k8s.io%%2Fgroup-key%%3D%s", qns, qk);
	free(qns);
	free(qk);
	control_request(a, "GET", url.buf, NULL, NULL, 0, group_list_done, a);
	buf_release(&url);
}
