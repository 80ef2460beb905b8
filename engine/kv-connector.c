/*
 * engine/kv-connector.c - P/D KV transfer for the serving engine (see
 * kv-connector.h): --kv-transfer-config parsing, held prefill blocks with
 * deadlines and their tokens (which authorize the side channel's READs and
 * DONEs), pull workers on the decode side, DONE notifications.
 */
#include "config.h"
#include "engine/kv-connector.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "lib/json.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/util.h"

#define TOKEN_BYTES 16          /* 128 random bits, KV_HOLD_TOKEN_LEN hex digits */

/*
 * A finished prefill's blocks, kept for a decoder. The token (random, sent
 * only in the response's remote_request_id) is what the side channel
 * accepts for READs of these blocks and for DONE; request_id is the
 * client's, for logs only (clients choose it, so it proves nothing).
 */
struct hold {
	char token[KV_HOLD_TOKEN_LEN + 1];
	char request_id[160];
	int32_t *blocks;
	int32_t *sorted;                /* blocks, ascending (authorize's lookups) */
	uint32_t n;
	uint64_t deadline_ms;
	struct hold *next;
};

struct kv_connector {
	struct kv_transfer_config cfg;
	struct kvx_engine *kvx;
	void *dummy;                    /* simulate: the side channel's 1-block region */
	struct scheduler *sched;
	uint32_t n_blocks;
	double sim_ms_per_token;
	pthread_mutex_t lock;
	struct hold *holds;
	size_t n_holds;
	/* pull and DONE threads (detached) still running; kv_connector_free
	 * waits for them, as they use kvx, sched and the metrics */
	int n_threads;
	pthread_cond_t threads_done;
	struct metric_family *m_timeouts, *m_pulls, *m_pull_fail, *m_pull_bytes;
	const char *const *labels;
	uint64_t block_bytes;
};

/* ---- config ---- */

int
kv_transfer_config_parse(const char *json, struct kv_transfer_config *c, struct llmd_err *e)
{
	cJSON *o = NULL;
	const cJSON *extra = NULL;
	const char *s = NULL, *role = NULL, *env_host, *env_port;
	int64_t v;
	int rc;

	memset(c, 0, sizeof(*c));
	snprintf(c->transport, sizeof(c->transport), "auto");
	c->n_streams = 4;
	c->abort_timeout_ms = 480000;   /* vLLM's VLLM_NIXL_ABORT_REQUEST_TIMEOUT */
	env_host = getenv("VLLM_NIXL_SIDE_CHANNEL_HOST");
	env_port = getenv("VLLM_NIXL_SIDE_CHANNEL_PORT");
	snprintf(c->listen, sizeof(c->listen), "%s:%s", env_host && *env_host ? "0.0.0.0" : "127.0.0.1",
	    env_port && *env_port ? env_port : "5600");
	if (env_host && *env_host)
		snprintf(c->advertise, sizeof(c->advertise), "%s", env_host);

	if ((rc = json_parse_named(json, strlen(json), "--kv-transfer-config", &o, e)) < 0)
		return rc;
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return err_set(e, -EINVAL, "--kv-transfer-config", "must be a JSON object");
	}
	if ((rc = json_get_str(o, "kv_connector", &s, 1, e)) < 0)
		goto fail;
	if (strcmp(s, "LlmdConnector") != 0 && strcmp(s, "NixlConnector") != 0) {
		rc = err_set(e, -EINVAL, "kv_connector", "\"%s\" is not supported (LlmdConnector; "
		    "NixlConnector is accepted as its alias)", s);
		goto fail;
	}
	snprintf(c->connector, sizeof(c->connector), "%s", s);
	if ((rc = json_get_str(o, "kv_role", &role, 1, e)) < 0)
		goto fail;
	if (strcmp(role, "kv_producer") == 0)
		c->role = KV_ROLE_PRODUCER;
	else if (strcmp(role, "kv_consumer") == 0)
		c->role = KV_ROLE_CONSUMER;
	else if (strcmp(role, "kv_both") == 0)
		c->role = KV_ROLE_BOTH;
	else {
		rc = err_set(e, -EINVAL, "kv_role", "\"%s\" is not kv_producer, kv_consumer or kv_both", role);
		goto fail;
	}
	if ((rc = json_get_str(o, "kv_ip", &s, 0, e)) < 0)
		goto fail;
	if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "kv_ip")))
		snprintf(c->advertise, sizeof(c->advertise), "%s", s);
	if ((rc = json_get_object(o, "kv_connector_extra_config", &extra, 0, e)) < 0)
		goto fail;
	if (extra) {
		if ((rc = json_get_str(extra, "side_channel", &s, 0, e)) < 0)
			goto fail_extra;
		if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(extra, "side_channel")))
			snprintf(c->listen, sizeof(c->listen), "%s", s);
		if ((rc = json_get_str(extra, "advertise", &s, 0, e)) < 0)
			goto fail_extra;
		if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(extra, "advertise")))
			snprintf(c->advertise, sizeof(c->advertise), "%s", s);
		if ((rc = json_get_str(extra, "transport", &s, 0, e)) < 0)
			goto fail_extra;
		if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(extra, "transport")))
			snprintf(c->transport, sizeof(c->transport), "%s", s);
		v = c->n_streams;
		if ((rc = json_get_int64_range(extra, "streams", 1, 16, &v, 0, e)) < 0)
			goto fail_extra;
		c->n_streams = (int)v;
		double t = (double)c->abort_timeout_ms / 1000.0;
		if ((rc = json_get_double(extra, "abort_timeout_s", &t, 0, e)) < 0)
			goto fail_extra;
		if (t <= 0) {
			rc = err_set(e, -EINVAL, "abort_timeout_s", "must be positive");
			goto fail_extra;
		}
		c->abort_timeout_ms = (int64_t)(t * 1000);
	}
	cJSON_Delete(o);
	return 0;
fail_extra:
	json_path_prefix(e, "kv_connector_extra_config");
fail:
	json_path_prefix(e, "--kv-transfer-config");
	cJSON_Delete(o);
	return rc;
}

/* ---- request params ---- */

int
kv_params_want_remote_decode(const cJSON *kvp)
{
	return kvp != NULL && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(kvp, "do_remote_decode"));
}

int
kv_remote_parse(const cJSON *kvp, struct kv_remote *r, struct llmd_err *e)
{
	const cJSON *ids, *it;
	const char *s;
	int64_t port;
	size_t i = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	if (kvp == NULL || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(kvp, "do_remote_prefill")))
		return 0;
	if ((rc = json_get_str(kvp, "remote_engine_id", &s, 1, e)) < 0)
		goto bad;
	snprintf(r->engine_id, sizeof(r->engine_id), "%s", s);
	if ((rc = json_get_str(kvp, "remote_request_id", &s, 1, e)) < 0)
		goto bad;
	snprintf(r->request_id, sizeof(r->request_id), "%s", s);
	if ((rc = json_get_str(kvp, "remote_host", &s, 1, e)) < 0)
		goto bad;
	snprintf(r->host, sizeof(r->host), "%s", s);
	if ((rc = json_get_int64_range(kvp, "remote_port", 1, 65535, &port, 1, e)) < 0)
		goto bad;
	r->port = (int)port;
	if ((rc = json_get_array(kvp, "remote_block_ids", &ids, 1, e)) < 0)
		goto bad;
	r->n_blocks = (uint32_t)cJSON_GetArraySize(ids);
	r->block_ids = xcalloc(r->n_blocks ? r->n_blocks : 1, sizeof(int32_t));
	cJSON_ArrayForEach(it, ids) {
		if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > INT32_MAX) {
			rc = err_set(e, -EINVAL, "remote_block_ids", "element %zu is not a block id", i);
			goto bad;
		}
		r->block_ids[i++] = (int32_t)it->valuedouble;
	}
	r->valid = true;
	return 1;
bad:
	json_path_prefix(e, "kv_transfer_params");
	kv_remote_release(r);
	return rc;
}

void
kv_remote_release(struct kv_remote *r)
{
	free(r->block_ids);
	r->block_ids = NULL;
	r->valid = false;
}

/* ---- connector ---- */

static void
release_hold(struct kv_connector *kc, struct hold *h)
{
	scheduler_release_held(kc->sched, h->blocks, h->n);
	free(h->sorted);
	free(h);
}

/* Does token name h? Constant time in the token's bytes (no prefix oracle). */
static bool
token_is(const struct hold *h, const char *token)
{
	return strlen(token) == KV_HOLD_TOKEN_LEN &&
	    CRYPTO_memcmp(h->token, token, KV_HOLD_TOKEN_LEN) == 0;
}

/* The hold token names, or NULL. Call with kc->lock held. */
static struct hold **
find_hold(struct kv_connector *kc, const char *token)
{
	for (struct hold **pp = &kc->holds; *pp; pp = &(*pp)->next)
		if (token_is(*pp, token))
			return pp;
	return NULL;
}

/* DONE from a decoder (side-channel thread) or a local release. */
static void
on_done(void *arg, const char *token)
{
	struct kv_connector *kc = arg;
	struct hold **pp, *h = NULL;

	pthread_mutex_lock(&kc->lock);
	if ((pp = find_hold(kc, token)) != NULL) {
		h = *pp;
		*pp = h->next;
		kc->n_holds--;
	}
	pthread_mutex_unlock(&kc->lock);
	if (h) {
		log_debug("kv: %s pulled; freeing %u blocks", h->request_id, h->n);
		release_hold(kc, h);
	} else {
		log_debug("kv: DONE for no held request (an unknown or spent token); ignored");
	}
}

static int
cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

/*
 * kvx_config.authorize, on a side-channel serving thread: 0 when every
 * block of runs is in token's hold (n_runs 0: the hold exists), else
 * -EACCES. Under kc->lock, so the hold cannot be freed while it is looked at.
 * An authorized READ (or verbs hello) restarts the hold's abort timer, so
 * the timeout does not free (and recycle) blocks while they are being sent.
 */
static int
authorize(void *arg, const char *token, const struct kvx_run *runs, uint32_t n_runs)
{
	struct kv_connector *kc = arg;
	struct hold **pp;
	int rc = 0;

	pthread_mutex_lock(&kc->lock);
	if ((pp = find_hold(kc, token)) == NULL) {
		rc = -EACCES;
	} else {
		const struct hold *h = *pp;
		for (uint32_t i = 0; i < n_runs && rc == 0; i++)
			for (uint32_t b = 0; b < runs[i].n && rc == 0; b++) {
				int32_t id = (int32_t)((int64_t)runs[i].rfirst + b);
				if (bsearch(&id, h->sorted, h->n, sizeof(int32_t), cmp_i32) == NULL)
					rc = -EACCES;
			}
		if (rc == 0)
			(*pp)->deadline_ms = MAX((*pp)->deadline_ms,
			    now_ms() + (uint64_t)kc->cfg.abort_timeout_ms);
	}
	pthread_mutex_unlock(&kc->lock);
	return rc;
}

void
kv_connector_release(struct kv_connector *kc, const char *token)
{
	if (kc != NULL && token != NULL)
		on_done(kc, token);
}

int
kv_connector_new(const struct kv_transfer_config *c, const struct kvx_layout *layout, void *base,
    uint32_t n_blocks, size_t block_stride, struct scheduler *sched, struct metrics *m,
    const char *const *label_vals, double sim_ms_per_token, struct kv_connector **out,
    struct llmd_err *e)
{
	struct kv_connector *kc = xcalloc(1, sizeof(*kc));
	struct kvx_config xc = { .transport = c->transport, .listen = c->listen,
		.advertise = c->advertise[0] ? c->advertise : NULL, .n_streams = c->n_streams,
		.on_done = on_done, .on_done_arg = kc, .authorize = authorize, .authorize_arg = kc };
	static const char *const L[] = { "model_name", "engine" };
	int rc;

	kc->cfg = *c;
	kc->sched = sched;
	kc->n_blocks = n_blocks;
	kc->sim_ms_per_token = sim_ms_per_token;
	kc->labels = label_vals;
	kc->block_bytes = layout->block_bytes;
	pthread_mutex_init(&kc->lock, NULL);
	pthread_cond_init(&kc->threads_done, NULL);
	if (base == NULL) {
		kc->dummy = xcalloc(1, block_stride);
		base = kc->dummy;
		n_blocks = 1;
	}
	if ((rc = kvx_engine_new(&xc, layout, base, n_blocks, block_stride, &kc->kvx, e)) < 0) {
		pthread_cond_destroy(&kc->threads_done);
		pthread_mutex_destroy(&kc->lock);
		free(kc->dummy);
		free(kc);
		return rc;
	}
	kc->m_timeouts = metrics_counter(m, "llmd:kv_transfer_timeouts_total",
	    "Held prefill KV blocks freed by the timeout because no decoder pulled them.", 2, L);
	kc->m_pulls = metrics_counter(m, "llmd:kv_transfer_pulls_total",
	    "Remote KV loads completed by this decode engine.", 2, L);
	kc->m_pull_fail = metrics_counter(m, "llmd:kv_transfer_pull_failures_total",
	    "Remote KV loads that failed (the prompt was recomputed).", 2, L);
	kc->m_pull_bytes = metrics_counter(m, "llmd:kv_transfer_pulled_bytes_total",
	    "Bytes of KV pulled from prefill engines.", 2, L);
	metric_add(kc->m_timeouts, label_vals, 0);
	metric_add(kc->m_pulls, label_vals, 0);
	metric_add(kc->m_pull_fail, label_vals, 0);
	metric_add(kc->m_pull_bytes, label_vals, 0);
	log_info("kv: %s %s, side channel %s:%d (%s transport)", c->connector,
	    c->role == KV_ROLE_PRODUCER ? "kv_producer" : c->role == KV_ROLE_CONSUMER ? "kv_consumer" : "kv_both",
	    kvx_engine_host(kc->kvx), kvx_engine_port(kc->kvx), kvx_engine_transport(kc->kvx));
	*out = kc;
	return 0;
}

void
kv_connector_free(struct kv_connector *kc)
{
	struct hold *h, *n;

	if (kc == NULL)
		return;
	/* fail the pulls in flight fast, then wait for their threads */
	kvx_engine_shutdown(kc->kvx);
	pthread_mutex_lock(&kc->lock);
	while (kc->n_threads > 0)
		pthread_cond_wait(&kc->threads_done, &kc->lock);
	pthread_mutex_unlock(&kc->lock);
	kvx_engine_free(kc->kvx);
	for (h = kc->holds; h; h = n) {
		n = h->next;
		free(h->blocks);
		free(h->sorted);
		free(h);
	}
	free(kc->dummy);
	pthread_cond_destroy(&kc->threads_done);
	pthread_mutex_destroy(&kc->lock);
	free(kc);
}

enum kv_role
kv_connector_role(const struct kv_connector *kc)
{
	return kc ? kc->cfg.role : KV_ROLE_NONE;
}

cJSON *
kv_connector_hold(struct kv_connector *kc, const char *request_id, int32_t *blocks, uint32_t n)
{
	struct hold *h = xcalloc(1, sizeof(*h));
	cJSON *p, *ids;

	if (secret_random_hex(TOKEN_BYTES, h->token) < 0) {
		/* no token, no hold: the decoder gets no params and recomputes */
		log_warnx("kv: no random bytes for %s's hold token; freeing its %u blocks", request_id, n);
		scheduler_release_held(kc->sched, blocks, n);
		free(h);
		return NULL;
	}
	snprintf(h->request_id, sizeof(h->request_id), "%s", request_id);
	h->blocks = blocks;
	h->n = n;
	h->sorted = xcalloc(n ? n : 1, sizeof(int32_t));
	memcpy(h->sorted, blocks, (size_t)n * sizeof(int32_t));
	qsort(h->sorted, n, sizeof(int32_t), cmp_i32);
	p = cJSON_CreateObject();
	h->deadline_ms = now_ms() + (uint64_t)kc->cfg.abort_timeout_ms;
	cJSON_AddBoolToObject(p, "do_remote_prefill", 1);
	cJSON_AddBoolToObject(p, "do_remote_decode", 0);
	ids = cJSON_AddArrayToObject(p, "remote_block_ids");
	for (uint32_t i = 0; i < n; i++)
		cJSON_AddItemToArray(ids, cJSON_CreateNumber(blocks[i]));
	cJSON_AddStringToObject(p, "remote_engine_id", kvx_engine_id(kc->kvx));
	/* the token, not the request id: it is what the side channel accepts */
	cJSON_AddStringToObject(p, "remote_request_id", h->token);
	cJSON_AddStringToObject(p, "remote_host", kvx_engine_host(kc->kvx));
	cJSON_AddNumberToObject(p, "remote_port", kvx_engine_port(kc->kvx));
	cJSON_AddNumberToObject(p, "tp_size", 1);
	pthread_mutex_lock(&kc->lock);
	h->next = kc->holds;
	kc->holds = h;
	kc->n_holds++;
	pthread_mutex_unlock(&kc->lock);
	return p;
}

void
kv_connector_expire(struct kv_connector *kc)
{
	struct hold **pp, *expired = NULL, *h;
	uint64_t now = now_ms();

	if (kc == NULL)
		return;
	pthread_mutex_lock(&kc->lock);
	for (pp = &kc->holds; *pp;) {
		if ((*pp)->deadline_ms <= now) {
			h = *pp;
			*pp = h->next;
			h->next = expired;
			expired = h;
			kc->n_holds--;
		} else {
			pp = &(*pp)->next;
		}
	}
	pthread_mutex_unlock(&kc->lock);
	while ((h = expired) != NULL) {
		expired = h->next;
		log_warnx("kv: no decoder pulled %s within %lld ms; freeing its %u blocks", h->request_id,
		    (long long)kc->cfg.abort_timeout_ms, h->n);
		metric_add(kc->m_timeouts, kc->labels, 1);
		release_hold(kc, h);
	}
}

size_t
kv_connector_n_held(struct kv_connector *kc)
{
	size_t n;

	pthread_mutex_lock(&kc->lock);
	n = kc->n_holds;
	pthread_mutex_unlock(&kc->lock);
	return n;
}

/* ---- consumer ---- */

/* Starts fn(arg) on a detached thread counted in n_threads; 0 or -errno. */
static int
spawn(struct kv_connector *kc, void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t at;
	int rc;

	pthread_mutex_lock(&kc->lock);
	kc->n_threads++;
	pthread_mutex_unlock(&kc->lock);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &at, fn, arg);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		pthread_mutex_lock(&kc->lock);
		kc->n_threads--;
		pthread_mutex_unlock(&kc->lock);
		return -rc;
	}
	return 0;
}

/* The last thing a spawned thread does with kc. */
static void
thread_exit(struct kv_connector *kc)
{
	pthread_mutex_lock(&kc->lock);
	if (--kc->n_threads == 0)
		pthread_cond_broadcast(&kc->threads_done);
	pthread_mutex_unlock(&kc->lock);
}

struct load_job {
	struct kv_connector *kc;
	uint64_t req_id;
	int32_t *remote, *local;
	uint32_t n, n_tokens;
	struct kv_remote rem;   /* host, port, ids (owned copy of the strings) */
};

/*
 * How logs name a remote hold: its token's first 8 characters. The whole
 * token would let a log reader read the prompt's KV while it is held.
 */
static const char *
hold_name(const struct kv_remote *rem, char out[16])
{
	snprintf(out, 16, "hold %.8s", rem->request_id);
	return out;
}

static void
send_done(struct kv_connector *kc, const struct kv_remote *rem)
{
	struct llmd_err e = LLMD_ERR_INIT;
	char hn[16];

	if (kvx_send_done(kc->kvx, rem->host, rem->port, rem->request_id, &e) < 0)
		log_warnx("kv: cannot tell %s:%d that %s was pulled: %s", rem->host, rem->port,
		    hold_name(rem, hn), e.msg);
}

static void *
load_main(void *arg)
{
	struct load_job *j = arg;
	struct kv_connector *kc = j->kc;
	struct llmd_err e = LLMD_ERR_INIT;
	char hn[16];
	int rc = 0;

	if (kc->dummy != NULL) {
		/* simulate: the transfer's latency, no bytes */
		double ms = kc->sim_ms_per_token * j->n_tokens;
		struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
		nanosleep(&ts, NULL);
	} else if (j->n > 0) {
		rc = kvx_pull(kc->kvx, j->rem.host, j->rem.port, j->rem.request_id, j->remote, j->local,
		    j->n, &e);
	}
	if (rc < 0) {
		log_warnx("kv: pulling %s from %s:%d failed (%s); recomputing the prompt", hold_name(&j->rem, hn),
		    j->rem.host, j->rem.port, e.msg);
		metric_add(kc->m_pull_fail, kc->labels, 1);
	} else {
		metric_add(kc->m_pulls, kc->labels, 1);
		metric_add(kc->m_pull_bytes, kc->labels, (double)j->n * (double)kc->block_bytes);
	}
	scheduler_remote_kv_done(kc->sched, j->req_id, rc == 0);
	send_done(kc, &j->rem);
	free(j->remote);
	free(j->local);
	free(j);
	return NULL;
}

static void *
load_thread(void *arg)
{
	struct kv_connector *kc = ((struct load_job *)arg)->kc;

	load_main(arg);
	thread_exit(kc);
	return NULL;
}

void
kv_connector_start_load(struct kv_connector *kc, const struct sched_kv_load *ld,
    const struct kv_remote *rem, uint32_t block_size)
{
	struct load_job *j = xcalloc(1, sizeof(*j));
	uint32_t first = (uint32_t)ld->first_block, nb = (uint32_t)ld->n_blocks;
	char hn[16];

	j->kc = kc;
	j->req_id = ld->req_id;
	j->rem = *rem;
	j->rem.block_ids = NULL;
	j->n_tokens = (uint32_t)ld->n_tokens - MIN((uint32_t)ld->n_tokens, first * block_size);
	if (nb > rem->n_blocks) {
		/* the producer computed fewer blocks than we need: recompute */
		log_warnx("kv: %s has %u remote blocks for %u local ones; recomputing", hold_name(rem, hn),
		    rem->n_blocks, nb);
		scheduler_remote_kv_done(kc->sched, ld->req_id, false);
		/* not inline: this is the compute thread, and the peer named by the
		 * request may take the whole I/O timeout to answer */
		kv_connector_notify(kc, rem);
		free(j);
		return;
	}
	j->n = nb > first ? nb - first : 0;
	j->remote = xcalloc(j->n ? j->n : 1, sizeof(int32_t));
	j->local = xcalloc(j->n ? j->n : 1, sizeof(int32_t));
	for (uint32_t i = 0; i < j->n; i++) {
		j->remote[i] = rem->block_ids[first + i];
		j->local[i] = ld->block_table[first + i];
	}
	if (spawn(kc, load_thread, j) < 0)
		load_main(j);
}

struct notify_job {
	struct kv_connector *kc;
	struct kv_remote rem;
};

static void *
notify_main(void *arg)
{
	struct notify_job *j = arg;

	struct kv_connector *kc = j->kc;

	send_done(kc, &j->rem);
	free(j);
	thread_exit(kc);
	return NULL;
}

void
kv_connector_notify(struct kv_connector *kc, const struct kv_remote *rem)
{
	struct notify_job *j;

	if (kc == NULL || !rem->valid)
		return;
	j = xcalloc(1, sizeof(*j));
	j->kc = kc;
	j->rem = *rem;
	j->rem.block_ids = NULL;
	if (spawn(kc, notify_main, j) < 0) {
		send_done(kc, &j->rem);
		free(j);
	}
}
