/*
 * daemon/derive.c - desired children of a combined LLMInferenceService:
 * workloads and their pods (Deployment-like and LeaderWorkerSet-like),
 * Services, InferencePool, InferenceModel, HTTPRoute, with the labels,
 * model storage, engine flags, GPU requests and LWS env of each pod.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/derive.h"
#include "daemon/naming.h"
#include "daemon/reconcile.h"
#include "daemon/validate.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "lib/json.h"

struct dctx {
	const char *name;      /* service name */
	const char *ns;
	const cJSON *spec;
	const char *model_name;
	const char *model_uri;
	int has_prefill;
	const char *pool_name; /* for INFERENCE_POOL_NAME; NULL without router */
	cJSON *out;
};

/* What differs between the pods of one workload. */
struct wl {
	const cJSON *w;        /* spec or spec.prefill */
	int prefill;
	int multinode;
	int size;              /* LWS group size */
	int dp, pp;            /* data / pipeline parallel */
};

static int
present(const cJSON *o, const char *k)
{
	const cJSON *v = json_member(o, k);

	return v && !cJSON_IsNull(v);
}

static int
ival(const cJSON *o, const char *k, int def)
{
	const cJSON *v = json_member(o, k);

	return cJSON_IsNumber(v) ? v->valueint : def;
}

static cJSON *
obj_child(cJSON *o, const char *k)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsObject(v)) {
		if (v)
			cJSON_DeleteItemFromObjectCaseSensitive(o, k);
		v = cJSON_AddObjectToObject(o, k);
	}
	return v;
}

static cJSON *
arr_child(cJSON *o, const char *k)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsArray(v)) {
		if (v)
			cJSON_DeleteItemFromObjectCaseSensitive(o, k);
		v = cJSON_AddArrayToObject(o, k);
	}
	return v;
}

static void
set_str(cJSON *o, const char *k, const char *v)
{
	if (cJSON_GetObjectItemCaseSensitive(o, k))
		cJSON_ReplaceItemInObjectCaseSensitive(o, k, cJSON_CreateString(v));
	else
		cJSON_AddStringToObject(o, k, v);
}

static cJSON *
find_named(const cJSON *arr, const char *name)
{
	cJSON *it;

	cJSON_ArrayForEach(it, arr) {
		const char *n = json_member_str(it, "name");

		if (n && strcmp(n, name) == 0)
			return it;
	}
	return NULL;
}

/* A new object {apiVersion, kind, metadata{name, namespace, labels, ownerReferences}}. */
static cJSON *
new_object(struct dctx *d, const char *api, const char *kind, const char *name, cJSON *labels,
    const char *owner_kind, const char *owner_name)
{
	cJSON *o = cJSON_CreateObject(), *md, *refs, *ref;

	cJSON_AddStringToObject(o, "apiVersion", api);
	cJSON_AddStringToObject(o, "kind", kind);
	md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", d->ns);
	cJSON_AddItemToObject(md, "labels", labels);
	refs = cJSON_AddArrayToObject(md, "ownerReferences");
	ref = cJSON_CreateObject();
	cJSON_AddStringToObject(ref, "apiVersion", owner_kind ? (strcmp(owner_kind, "Deployment") == 0 ?
	    "apps/v1" : "leaderworkerset.x-k8s.io/v1") : LLMISVC_API_VERSION);
	cJSON_AddStringToObject(ref, "kind", owner_kind ? owner_kind : LLMISVC_KIND);
	cJSON_AddStringToObject(ref, "name", owner_name ? owner_name : d->name);
	cJSON_AddBoolToObject(ref, "controller", 1);
	cJSON_AddItemToArray(refs, ref);
	return o;
}

/* ---- container helpers ---- */

static cJSON *
engine_container(cJSON *podspec)
{
	cJSON *cs = cJSON_GetObjectItemCaseSensitive(podspec, "containers");
	cJSON *m = find_named(cs, "main");

	return m ? m : cJSON_GetArrayItem(cs, 0);
}

static int
has_flag(const cJSON *c, const char *flag)
{
	static const char *const lists[] = { "command", "args" };
	size_t fl = strlen(flag);

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		const cJSON *it;

		cJSON_ArrayForEach(it, json_member(c, lists[i])) {
			if (!cJSON_IsString(it))
				continue;
			/* a bash -c script carries flags inside one string */
			const char *hit = strstr(it->valuestring, flag);

			while (hit) {
				char nx = hit[fl];

				if ((hit == it->valuestring || hit[-1] == ' ') &&
				    (nx == '\0' || nx == '=' || nx == ' '))
					return 1;
				hit = strstr(hit + 1, flag);
			}
		}
	}
	return 0;
}

static void add_flag(cJSON *c, const char *flag, const char *fmt, ...) LLMD_PRINTF(3, 4);

static void
add_flag(cJSON *c, const char *flag, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	if (has_flag(c, flag))
		return;
	buf_adds(&b, flag);
	if (fmt) {
		buf_addch(&b, '=');
		va_start(ap, fmt);
		buf_vaddf(&b, fmt, ap);
		va_end(ap);
	}
	cJSON_AddItemToArray(arr_child(c, "args"), cJSON_CreateString(b.buf));
	buf_release(&b);
}

static void
add_env_if_absent(cJSON *c, const char *name, const char *value)
{
	cJSON *env = arr_child(c, "env"), *e;

	if (find_named(env, name))
		return;
	e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "name", name);
	cJSON_AddStringToObject(e, "value", value);
	cJSON_AddItemToArray(env, e);
}

static long
quantity(const cJSON *v)
{
	if (cJSON_IsNumber(v))
		return (long)v->valuedouble;
	if (cJSON_IsString(v))
		return strtol(v->valuestring, NULL, 10);
	return -1;
}

static long
container_gpus(const cJSON *c)
{
	const cJSON *r = json_member(c, "resources");
	long l = quantity(json_member(json_member(r, "limits"), GPU_RESOURCE));
	long q = quantity(json_member(json_member(r, "requests"), GPU_RESOURCE));

	return l >= 0 ? l : q;
}

int
derive_pod_gpus(const cJSON *pod)
{
	const cJSON *spec = json_member(pod, "spec"), *c;
	long n = 0;

	cJSON_ArrayForEach(c, json_member(spec, "containers")) {
		long g = container_gpus(c);

		if (g > 0)
			n += g;
	}
	return (int)n;
}

static void
set_gpus(cJSON *c, long n)
{
	cJSON *r = obj_child(c, "resources");
	char s[24];

	snprintf(s, sizeof(s), "%ld", n);
	set_str(obj_child(r, "limits"), GPU_RESOURCE, s);
	set_str(obj_child(r, "requests"), GPU_RESOURCE, s);
}

/* ---- $(VAR) expansion ---- */

char *
derive_expand_vars(const char *s, const cJSON *env)
{
	struct buf b = BUF_INIT;

	while (*s) {
		if (s[0] == '$' && s[1] == '$' && s[2] == '(') {
			buf_adds(&b, "$(");
			s += 3;
			continue;
		}
		if (s[0] == '$' && s[1] == '(') {
			const char *close = strchr(s + 2, ')');

			if (close) {
				char *nm = xstrndup(s + 2, (size_t)(close - s - 2));
				const cJSON *e = find_named(env, nm);
				const char *v = json_member_str(e, "value");

				free(nm);
				if (v) {
					buf_adds(&b, v);
					s = close + 1;
					continue;
				}
			}
		}
		buf_addch(&b, *s++);
	}
	return buf_detach(&b, NULL);
}

static void
expand_container(cJSON *c)
{
	static const char *const lists[] = { "command", "args" };
	const cJSON *env = json_member(c, "env");

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		cJSON *it;
		const cJSON *list = json_member(c, lists[i]);

		if (!list)
			continue;
		cJSON_ArrayForEach(it, list) {
			if (cJSON_IsString(it) && strstr(it->valuestring, "$(")) {
				char *x = derive_expand_vars(it->valuestring, env);

				cJSON_SetValuestring(it, x);
				free(x);
			}
		}
	}
}

/* Resolves env valueFrom.fieldRef of metadata.name/namespace and labels into values. */
static void
resolve_field_refs(cJSON *c, const cJSON *pod)
{
	cJSON *e;
	const cJSON *md = json_member(pod, "metadata");

	cJSON_ArrayForEach(e, json_member(c, "env")) {
		const char *fp = json_member_str(json_member(json_member(e, "valueFrom"), "fieldRef"), "fieldPath");
		const char *v = NULL;
		char key[256];

		if (!fp)
			continue;
		if (strcmp(fp, "metadata.name") == 0)
			v = json_member_str(md, "name");
		else if (strcmp(fp, "metadata.namespace") == 0)
			v = json_member_str(md, "namespace");
		else if (sscanf(fp, "metadata.labels['%255[^']']", key) == 1)
			v = json_member_str(json_member(md, "labels"), key);
		if (v) {
			cJSON_DeleteItemFromObjectCaseSensitive(e, "valueFrom");
			cJSON_AddStringToObject(e, "value", v);
		}
	}
}

static void
for_each_container(cJSON *podspec, void (*fn)(cJSON *c, const cJSON *arg), const cJSON *arg)
{
	static const char *const lists[] = { "initContainers", "containers" };

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		cJSON *c;

		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(podspec, lists[i]))
			fn(c, arg);
	}
}

static void
cb_resolve(cJSON *c, const cJSON *pod)
{
	resolve_field_refs(c, pod);
}

static void
cb_expand(cJSON *c, const cJSON *unused)
{
	expand_container(c);
}

/* ---- pod template preparation (shared by all pods of a workload) ---- */

static void
add_model_storage(struct dctx *d, cJSON *ps, cJSON *main)
{
	cJSON *vols = arr_child(ps, "volumes"), *vm, *v;
	const char *uri = d->model_uri;
	const cJSON *m, *mounts = json_member(main, "volumeMounts");

	cJSON_ArrayForEach(m, mounts) {
		const char *mp = json_member_str(m, "mountPath");

		if (mp && strcmp(mp, MODEL_MOUNT) == 0)
			return;     /* the template brings its own model mount */
	}
	vm = cJSON_CreateObject();
	v = cJSON_CreateObject();
	cJSON_AddStringToObject(vm, "mountPath", MODEL_MOUNT);
	cJSON_AddBoolToObject(vm, "readOnly", 1);
	if (strncmp(uri, "pvc://", 6) == 0) {
		const char *claim = uri + 6, *slash = strchr(claim, '/');
		char *cn = slash ? xstrndup(claim, (size_t)(slash - claim)) : xstrdup(claim);
		cJSON *pvc;

		cJSON_AddStringToObject(v, "name", "kserve-pvc-source");
		pvc = cJSON_AddObjectToObject(v, "persistentVolumeClaim");
		cJSON_AddStringToObject(pvc, "claimName", cn);
		cJSON_AddBoolToObject(pvc, "readOnly", 1);
		cJSON_AddStringToObject(vm, "name", "kserve-pvc-source");
		if (slash && slash[1])
			cJSON_AddStringToObject(vm, "subPath", slash + 1);
		free(cn);
	} else if (strncmp(uri, "file://", 7) == 0) {
		cJSON *hp;

		cJSON_AddStringToObject(v, "name", "kserve-local-model");
		hp = cJSON_AddObjectToObject(v, "hostPath");
		cJSON_AddStringToObject(hp, "path", uri + 7);
		cJSON_AddStringToObject(vm, "name", "kserve-local-model");
	} else {
		/* hf://, s3://, gs://: the storage initializer downloads into an emptyDir */
		cJSON *init = cJSON_CreateObject(), *args, *im, *ims;

		cJSON_AddStringToObject(v, "name", "kserve-provision-location");
		cJSON_AddObjectToObject(v, "emptyDir");
		cJSON_AddStringToObject(vm, "name", "kserve-provision-location");
		cJSON_AddStringToObject(init, "name", "storage-initializer");
		cJSON_AddStringToObject(init, "image", "kserve/storage-initializer:latest");
		args = cJSON_AddArrayToObject(init, "args");
		cJSON_AddItemToArray(args, cJSON_CreateString(uri));
		cJSON_AddItemToArray(args, cJSON_CreateString(MODEL_MOUNT));
		ims = cJSON_AddArrayToObject(init, "volumeMounts");
		im = cJSON_CreateObject();
		cJSON_AddStringToObject(im, "name", "kserve-provision-location");
		cJSON_AddStringToObject(im, "mountPath", MODEL_MOUNT);
		cJSON_AddItemToArray(ims, im);
		if (!find_named(json_member(ps, "initContainers"), "storage-initializer"))
			cJSON_AddItemToArray(arr_child(ps, "initContainers"), init);
		else
			cJSON_Delete(init);
	}
	if (!find_named(vols, json_member_str(v, "name")))
		cJSON_AddItemToArray(vols, v);
	else
		cJSON_Delete(v);
	cJSON_AddItemToArray(arr_child(main, "volumeMounts"), vm);
}

/*
 * Static LoRA adapters (spec.model.lora.adapters, as upstream PR #5317 does
 * later): each adapter is made available read-only at /mnt/lora/<name> and
 * passed as --lora-modules <name>=/mnt/lora/<name>, with --enable-lora.
 */
static void
add_lora_adapters(struct dctx *d, cJSON *ps, cJSON *main)
{
	const cJSON *ads = json_member(json_member(json_member(d->spec, "model"), "lora"), "adapters"), *a;
	int i = 0;

	cJSON_ArrayForEach(a, ads) {
		const char *uri = json_member_str(a, "uri"), *an = json_member_str(a, "name");
		char name[128], vol[64], mp[192];
		cJSON *v, *vm;

		if (!uri)
			continue;
		snprintf(name, sizeof(name), "%s", an && an[0] ? an : "");
		if (!name[0])
			snprintf(name, sizeof(name), "adapter-%d", i);
		snprintf(vol, sizeof(vol), "lora-%d", i++);
		snprintf(mp, sizeof(mp), "/mnt/lora/%s", name);
		if (find_named(json_member(ps, "volumes"), vol))
			continue;
		v = cJSON_CreateObject();
		cJSON_AddStringToObject(v, "name", vol);
		if (strncmp(uri, "file://", 7) == 0) {
			cJSON_AddStringToObject(cJSON_AddObjectToObject(v, "hostPath"), "path", uri + 7);
		} else if (strncmp(uri, "pvc://", 6) == 0) {
			const char *claim = uri + 6, *slash = strchr(claim, '/');
			char *cn = slash ? xstrndup(claim, (size_t)(slash - claim)) : xstrdup(claim);
			cJSON *pvc = cJSON_AddObjectToObject(v, "persistentVolumeClaim");

			cJSON_AddStringToObject(pvc, "claimName", cn);
			cJSON_AddBoolToObject(pvc, "readOnly", 1);
			free(cn);
		} else {
			cJSON *init = cJSON_CreateObject(), *args, *ims, *im;
			char iname[96];

			cJSON_AddObjectToObject(v, "emptyDir");
			snprintf(iname, sizeof(iname), "storage-initializer-%s", vol);
			cJSON_AddStringToObject(init, "name", iname);
			cJSON_AddStringToObject(init, "image", "kserve/storage-initializer:latest");
			args = cJSON_AddArrayToObject(init, "args");
			cJSON_AddItemToArray(args, cJSON_CreateString(uri));
			cJSON_AddItemToArray(args, cJSON_CreateString(mp));
			ims = cJSON_AddArrayToObject(init, "volumeMounts");
			im = cJSON_CreateObject();
			cJSON_AddStringToObject(im, "name", vol);
			cJSON_AddStringToObject(im, "mountPath", mp);
			cJSON_AddItemToArray(ims, im);
			cJSON_AddItemToArray(arr_child(ps, "initContainers"), init);
		}
		cJSON_AddItemToArray(arr_child(ps, "volumes"), v);
		vm = cJSON_CreateObject();
		cJSON_AddStringToObject(vm, "name", vol);
		cJSON_AddStringToObject(vm, "mountPath", mp);
		cJSON_AddBoolToObject(vm, "readOnly", 1);
		if (strncmp(uri, "pvc://", 6) == 0 && strchr(uri + 6, '/') && strchr(uri + 6, '/')[1])
			cJSON_AddStringToObject(vm, "subPath", strchr(uri + 6, '/') + 1);
		cJSON_AddItemToArray(arr_child(main, "volumeMounts"), vm);
		if (!has_flag(main, "--enable-lora"))
			cJSON_AddItemToArray(arr_child(main, "args"), cJSON_CreateString("--enable-lora"));
		{
			char mod[352];

			snprintf(mod, sizeof(mod), "%s=%s", name, mp);
			cJSON_AddItemToArray(arr_child(main, "args"), cJSON_CreateString("--lora-modules"));
			cJSON_AddItemToArray(arr_child(main, "args"), cJSON_CreateString(mod));
		}
	}
}

/* Workload-level engine flags (the per-pod ones are added in make_pod). */
static void
add_engine_flags(struct dctx *d, const struct wl *w, cJSON *main)
{
	const cJSON *par = json_member(w->w, "parallelism");
	int tensor = ival(par, "tensor", 0), pipeline = ival(par, "pipeline", 0);
	int data = ival(par, "data", 0), local = ival(par, "dataLocal", 0);

	add_flag(main, "--served-model-name", "%s", d->model_name);
	/* P/D engines must move KV between prefill and decode (upstream #5987) */
	if (d->has_prefill)
		add_flag(main, "--kv-transfer-config", "%s", KV_TRANSFER_CONFIG);
	if (tensor > 0)
		add_flag(main, "--tensor-parallel-size", "%d", tensor);
	if (pipeline > 0)
		add_flag(main, "--pipeline-parallel-size", "%d", pipeline);
	if (cJSON_IsTrue(json_member(par, "expert")))
		add_flag(main, "--enable-expert-parallel", NULL);
	if (w->dp) {
		add_flag(main, "--data-parallel-size", "%d", MAX(data, 1));
		add_flag(main, "--data-parallel-size-local", "%d", MAX(local, 1));
		add_flag(main, "--data-parallel-rpc-port", "%d", ival(par, "dataRPCPort", 5555));
		if (w->multinode)
			add_flag(main, "--data-parallel-address", "$(LWS_LEADER_ADDRESS)");
	} else if (w->pp && w->multinode) {
		add_flag(main, "--nnodes", "%d", w->size);
		add_flag(main, "--master-addr", "$(LWS_LEADER_ADDRESS)");
	}
}

static long
pod_gpu_count(const struct wl *w)
{
	const cJSON *par = json_member(w->w, "parallelism");
	long g = MAX(ival(par, "tensor", 1), 1);

	if (w->dp)
		g *= MAX(ival(par, "dataLocal", 1), 1);
	else if (w->pp && !w->multinode)
		g *= MAX(ival(par, "pipeline", 1), 1);
	return g;
}

/* Copies and completes a workload pod spec; NULL when src is not an object. */
static cJSON *
prepare_podspec(struct dctx *d, const struct wl *w, const cJSON *src)
{
	cJSON *ps, *main, *sc;

	if (!cJSON_IsObject(src))
		return NULL;
	ps = cJSON_Duplicate(src, 1);
	main = engine_container(ps);
	if (!main) {
		main = cJSON_CreateObject();
		cJSON_AddStringToObject(main, "name", "main");
		cJSON_AddItemToArray(arr_child(ps, "containers"), main);
	}
	if (d->model_uri)
		add_model_storage(d, ps, main);
	if (!has_flag(main, "--lora-modules"))
		add_lora_adapters(d, ps, main);
	add_engine_flags(d, w, main);
	/* An explicit count stands, 0 included (a CPU engine); else parallelism's. */
	if (container_gpus(main) >= 0)
		set_gpus(main, container_gpus(main));
	else
		set_gpus(main, pod_gpu_count(w));
	sc = find_named(json_member(ps, "initContainers"), "llm-d-routing-sidecar");
	if (sc && d->pool_name)
		add_env_if_absent(sc, "INFERENCE_POOL_NAME", d->pool_name);
	return ps;
}

/* ---- pods ---- */

static const char pod_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";

static void
safe_encode(const char *seed, size_t n, char *out)
{
	char h[33];

	naming_md5_hex(seed, strlen(seed), h);
	for (size_t i = 0; i < n; i++) {
		unsigned v = (unsigned)strtoul((char[]){ h[2 * i], h[2 * i + 1], 0 }, NULL, 16);

		out[i] = pod_alphabet[v % (sizeof(pod_alphabet) - 1)];
	}
	out[n] = '\0';
}

static cJSON *
make_pod(struct dctx *d, const char *name, const cJSON *tmpl_labels, const cJSON *podspec,
    const char *owner_kind, const char *owner_name)
{
	cJSON *pod = new_object(d, "v1", "Pod", name, cJSON_Duplicate(tmpl_labels, 1), owner_kind,
	    owner_name);

	cJSON_AddItemToObject(pod, "spec", cJSON_Duplicate(podspec, 1));
	return pod;
}

static void
finish_pod(cJSON *pod)
{
	cJSON *ps = cJSON_GetObjectItemCaseSensitive(pod, "spec");

	for_each_container(ps, cb_resolve, pod);
	for_each_container(ps, cb_expand, NULL);
}

static cJSON *
template_obj(const cJSON *labels, cJSON *podspec)
{
	cJSON *t = cJSON_CreateObject(), *md = cJSON_AddObjectToObject(t, "metadata");

	cJSON_AddItemToObject(md, "labels", cJSON_Duplicate(labels, 1));
	cJSON_AddItemToObject(t, "spec", podspec);
	return t;
}

static void
derive_deployment(struct dctx *d, const struct wl *w)
{
	const char *role = w->prefill ? "prefill" : (d->has_prefill ? "decode" : "both");
	const char *comp = w->prefill ? COMP_WORKLOAD_PREFILL : COMP_WORKLOAD;
	char *name = llmd_child_name(d->name, w->prefill ? SFX_PREFILL : SFX_MAIN);
	cJSON *labels = naming_labels(d->name, comp, 1, role);
	cJSON *ps = prepare_podspec(d, w, json_member(w->w, "template"));
	cJSON *dep, *spec, *plabels;
	char *tj, hash[11];
	int replicas = ival(w->w, "replicas", 1);

	if (!ps) {
		cJSON *empty = cJSON_CreateObject();

		ps = prepare_podspec(d, w, empty);
		cJSON_Delete(empty);
	}
	tj = cJSON_PrintUnformatted(ps);
	safe_encode(tj, 10, hash);
	cJSON_free(tj);
	dep = new_object(d, "apps/v1", "Deployment", name, cJSON_Duplicate(labels, 1), NULL, NULL);
	spec = cJSON_AddObjectToObject(dep, "spec");
	cJSON_AddNumberToObject(spec, "replicas", replicas);
	cJSON_AddItemToObject(cJSON_AddObjectToObject(spec, "selector"), "matchLabels",
	    cJSON_Duplicate(labels, 1));
	cJSON_AddItemToObject(spec, "template", template_obj(labels, cJSON_Duplicate(ps, 1)));
	cJSON_AddItemToArray(d->out, dep);
	plabels = cJSON_Duplicate(labels, 1);
	cJSON_AddStringToObject(plabels, "pod-template-hash", hash);
	for (int i = 0; i < replicas; i++) {
		char seed[128], sfx[6];
		struct buf pn = BUF_INIT;
		cJSON *pod;

		snprintf(seed, sizeof(seed), "%s/%d", hash, i);
		safe_encode(seed, 5, sfx);
		buf_addf(&pn, "%s-%s-%s", name, hash, sfx);
		pod = make_pod(d, pn.buf, plabels, ps, "Deployment", name);
		finish_pod(pod);
		cJSON_AddItemToArray(d->out, pod);
		buf_release(&pn);
	}
	cJSON_Delete(plabels);
	cJSON_Delete(labels);
	cJSON_Delete(ps);
	free(name);
}

static void
lws_pod_setup(struct dctx *d, const struct wl *w, cJSON *pod, const char *lws, int g, int idx)
{
	cJSON *ps = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	cJSON *lb = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod,
	    "metadata"), "labels");
	cJSON *ann = cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(pod, "metadata"),
	    "annotations");
	const cJSON *par = json_member(w->w, "parallelism");
	char addr[512], gs[16], wi[16], gk[33], key[300];
	cJSON *main, *c;
	static const char *const lists[] = { "initContainers", "containers" };

	snprintf(addr, sizeof(addr), "%s-%d.%s.%s", lws, g, lws, d->ns);
	snprintf(gs, sizeof(gs), "%d", w->size);
	snprintf(wi, sizeof(wi), "%d", idx);
	snprintf(key, sizeof(key), "%s/%s-%d", d->ns, lws, g);
	naming_md5_hex(key, strlen(key), gk);
	cJSON_AddStringToObject(lb, "leaderworkerset.sigs.k8s.io/name", lws);
	snprintf(key, sizeof(key), "%d", g);
	cJSON_AddStringToObject(lb, "leaderworkerset.sigs.k8s.io/group-index", key);
	cJSON_AddStringToObject(lb, "leaderworkerset.sigs.k8s.io/worker-index", wi);
	cJSON_AddStringToObject(lb, "leaderworkerset.sigs.k8s.io/group-key", gk);
	cJSON_AddStringToObject(ann, "leaderworkerset.sigs.k8s.io/size", gs);
	if (idx > 0) {
		snprintf(key, sizeof(key), "%s-%d", lws, g);
		cJSON_AddStringToObject(ann, "leaderworkerset.sigs.k8s.io/leader-name", key);
	}
	set_str(ps, "subdomain", lws);
	if (idx > 0)
		snprintf(key, sizeof(key), "%s-%d-%d", lws, g, idx);
	else
		snprintf(key, sizeof(key), "%s-%d", lws, g);
	set_str(ps, "hostname", key);
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(ps, lists[i])) {
			add_env_if_absent(c, "LWS_LEADER_ADDRESS", addr);
			add_env_if_absent(c, "LWS_GROUP_SIZE", gs);
			add_env_if_absent(c, "LWS_WORKER_INDEX", wi);
		}
	}
	main = engine_container(ps);
	if (!main)
		return;
	if (w->dp)
		add_flag(main, "--data-parallel-start-rank", "%d", idx * MAX(ival(par, "dataLocal", 1), 1));
	else if (w->pp)
		add_flag(main, "--node-rank", "%d", idx);
	if (idx > 0)
		add_flag(main, "--headless", NULL);
}

static void
derive_lws(struct dctx *d, const struct wl *w)
{
	const char *role = w->prefill ? "prefill" : (d->has_prefill ? "decode" : "both");
	int has_tmpl = present(w->w, "template");
	char *name = llmd_child_name(d->name, w->prefill ? SFX_PREFILL_MN : SFX_MAIN_MN);
	cJSON *wlabels = naming_labels(d->name, w->prefill ? COMP_WORKLOAD_WORKER_PF :
	    COMP_WORKLOAD_WORKER, !has_tmpl, has_tmpl ? NULL : role);
	cJSON *llabels = naming_labels(d->name, w->prefill ? COMP_WORKLOAD_LEADER_PF :
	    COMP_WORKLOAD_LEADER, 1, role);
	cJSON *wps = prepare_podspec(d, w, json_member(w->w, "worker"));
	cJSON *lps = has_tmpl ? prepare_podspec(d, w, json_member(w->w, "template")) : NULL;
	cJSON *lws, *spec, *lwt, *svc, *sspec, *sel, *ro;
	int replicas = ival(w->w, "replicas", 1);

	if (!wps) {
		cJSON *empty = cJSON_CreateObject();

		wps = prepare_podspec(d, w, empty);
		cJSON_Delete(empty);
	}
	if (!lps)
		lps = cJSON_Duplicate(wps, 1);

	lws = new_object(d, "leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", name,
	    cJSON_Duplicate(wlabels, 1), NULL, NULL);
	spec = cJSON_AddObjectToObject(lws, "spec");
	cJSON_AddNumberToObject(spec, "replicas", replicas);
	cJSON_AddStringToObject(spec, "startupPolicy", "LeaderCreated");
	ro = cJSON_AddObjectToObject(spec, "rolloutStrategy");
	cJSON_AddStringToObject(ro, "type", "RollingUpdate");
	lwt = cJSON_AddObjectToObject(spec, "leaderWorkerTemplate");
	cJSON_AddNumberToObject(lwt, "size", w->size);
	cJSON_AddStringToObject(lwt, "restartPolicy", "RecreateGroupOnPodRestart");
	cJSON_AddItemToObject(lwt, "leaderTemplate", template_obj(llabels, cJSON_Duplicate(lps, 1)));
	cJSON_AddItemToObject(lwt, "workerTemplate", template_obj(wlabels, cJSON_Duplicate(wps, 1)));
	if (w->prefill && w->dp)
		cJSON_AddNumberToObject(cJSON_AddObjectToObject(lwt, "subGroupPolicy"), "subGroupSize",
		    w->size);
	cJSON_AddItemToArray(d->out, lws);

	/* the headless Service LWS creates for pod DNS */
	svc = new_object(d, "v1", "Service", name, cJSON_Duplicate(wlabels, 1),
	    "LeaderWorkerSet", name);
	sspec = cJSON_AddObjectToObject(svc, "spec");
	cJSON_AddStringToObject(sspec, "clusterIP", "None");
	cJSON_AddBoolToObject(sspec, "publishNotReadyAddresses", 1);
	sel = cJSON_AddObjectToObject(sspec, "selector");
	cJSON_AddStringToObject(sel, "leaderworkerset.sigs.k8s.io/name", name);
	cJSON_AddItemToArray(d->out, svc);

	for (int g = 0; g < replicas; g++) {
		for (int i = 0; i < w->size; i++) {
			struct buf pn = BUF_INIT;
			cJSON *pod;

			if (i == 0)
				buf_addf(&pn, "%s-%d", name, g);
			else
				buf_addf(&pn, "%s-%d-%d", name, g, i);
			pod = make_pod(d, pn.buf, i == 0 ? llabels : wlabels, i == 0 ? lps : wps,
			    "LeaderWorkerSet", name);
			lws_pod_setup(d, w, pod, name, g, i);
			finish_pod(pod);
			cJSON_AddItemToArray(d->out, pod);
			buf_release(&pn);
		}
	}
	cJSON_Delete(wlabels);
	cJSON_Delete(llabels);
	cJSON_Delete(wps);
	cJSON_Delete(lps);
	free(name);
}

static void
derive_workload(struct dctx *d, const cJSON *wspec, int prefill)
{
	const cJSON *par = json_member(wspec, "parallelism");
	struct wl w = { wspec, prefill, present(wspec, "worker"), validate_group_size(wspec),
		ival(par, "data", 0) > 0 || ival(par, "dataLocal", 0) > 0,
		ival(par, "pipeline", 0) > 0 };

	if (w.multinode)
		derive_lws(d, &w);
	else
		derive_deployment(d, &w);
}

/* ---- services, scheduler, route ---- */

static void
derive_workload_service(struct dctx *d)
{
	char *name = llmd_child_name(d->name, SFX_WORKLOAD_SVC);
	cJSON *svc = new_object(d, "v1", "Service", name, naming_labels(d->name, COMP_WORKLOAD, 0,
	    NULL), NULL, NULL);
	cJSON *spec = cJSON_AddObjectToObject(svc, "spec"), *ports, *p;

	cJSON_AddStringToObject(spec, "type", "ClusterIP");
	cJSON_AddItemToObject(spec, "selector", naming_workload_selector(d->name));
	ports = cJSON_AddArrayToObject(spec, "ports");
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "name", "http");
	cJSON_AddNumberToObject(p, "port", 8000);
	cJSON_AddNumberToObject(p, "targetPort", 8000);
	cJSON_AddStringToObject(p, "protocol", "TCP");
	cJSON_AddItemToArray(ports, p);
	cJSON_AddItemToArray(d->out, svc);
	free(name);
}

static const char *
epp_config_text(int pd)
{
	if (pd)
		return "apiVersion: inference.networking.x-k8s.io/v1alpha1\n"
		    "kind: EndpointPickerConfig\n"
		    "plugins:\n"
		    "- type: pd-profile-handler\n  parameters:\n    threshold: 100\n"
		    "- type: prefill-header-handler\n"
		    "- type: prefill-filter\n"
		    "- type: decode-filter\n"
		    "- type: prefix-cache-scorer\n"
		    "- type: load-aware-scorer\n"
		    "- type: max-score-picker\n"
		    "schedulingProfiles:\n"
		    "- name: prefill\n  plugins:\n  - pluginRef: prefill-filter\n"
		    "  - pluginRef: prefix-cache-scorer\n    weight: 2\n"
		    "  - pluginRef: load-aware-scorer\n    weight: 1\n  - pluginRef: max-score-picker\n"
		    "- name: decode\n  plugins:\n  - pluginRef: decode-filter\n"
		    "  - pluginRef: prefix-cache-scorer\n    weight: 2\n"
		    "  - pluginRef: load-aware-scorer\n    weight: 1\n  - pluginRef: max-score-picker\n";
	return "apiVersion: inference.networking.x-k8s.io/v1alpha1\n"
	    "kind: EndpointPickerConfig\n"
	    "plugins:\n"
	    "- type: single-profile-handler\n"
	    "- type: prefix-cache-scorer\n"
	    "- type: load-aware-scorer\n"
	    "- type: max-score-picker\n"
	    "schedulingProfiles:\n"
	    "- name: default\n  plugins:\n"
	    "  - pluginRef: prefix-cache-scorer\n    weight: 2\n"
	    "  - pluginRef: load-aware-scorer\n    weight: 1\n  - pluginRef: max-score-picker\n";
}

static void
derive_scheduler(struct dctx *d, const cJSON *sched)
{
	char *dname = llmd_child_name(d->name, SFX_SCHEDULER);
	char *sname = llmd_child_name(d->name, SFX_EPP_SVC);
	char *pname = llmd_child_name(d->name, SFX_POOL);
	char *mname = llmd_child_name(d->name, SFX_MODEL);
	cJSON *labels = naming_labels(d->name, COMP_SCHEDULER, 0, NULL);
	cJSON *ps, *dep, *spec, *main, *svc, *sspec, *ports, *pool, *model, *mspec, *pr, *c;
	const cJSON *tmpl = json_member(sched, "template"), *port, *cs;
	const char *crit = json_member_str(json_member(d->spec, "model"), "criticality");
	char hash[11], *tj;

	/* EPP Deployment and its pod */
	ps = cJSON_IsObject(tmpl) ? cJSON_Duplicate(tmpl, 1) : cJSON_CreateObject();
	main = engine_container(ps);
	if (!main) {
		main = cJSON_CreateObject();
		cJSON_AddStringToObject(main, "name", "main");
		cJSON_AddItemToArray(arr_child(ps, "containers"), main);
	}
	if (!has_flag(main, "--configText") && !has_flag(main, "-configText") &&
	    !has_flag(main, "--configFile") && !has_flag(main, "-configFile")) {
		cJSON *args = arr_child(main, "args");

		cJSON_AddItemToArray(args, cJSON_CreateString("--configText"));
		cJSON_AddItemToArray(args, cJSON_CreateString(epp_config_text(d->has_prefill)));
	}
	dep = new_object(d, "apps/v1", "Deployment", dname, cJSON_Duplicate(labels, 1), NULL, NULL);
	spec = cJSON_AddObjectToObject(dep, "spec");
	cJSON_AddNumberToObject(spec, "replicas", 1);
	cJSON_AddItemToObject(cJSON_AddObjectToObject(spec, "selector"), "matchLabels",
	    cJSON_Duplicate(labels, 1));
	cJSON_AddItemToObject(spec, "template", template_obj(labels, cJSON_Duplicate(ps, 1)));
	cJSON_AddItemToArray(d->out, dep);
	tj = cJSON_PrintUnformatted(ps);
	safe_encode(tj, 10, hash);
	cJSON_free(tj);
	{
		char seed[64], sfx[6];
		struct buf pn = BUF_INIT;
		cJSON *pl = cJSON_Duplicate(labels, 1), *pod;

		snprintf(seed, sizeof(seed), "%s/0", hash);
		safe_encode(seed, 5, sfx);
		buf_addf(&pn, "%s-%s-%s", dname, hash, sfx);
		cJSON_AddStringToObject(pl, "pod-template-hash", hash);
		pod = make_pod(d, pn.buf, pl, ps, "Deployment", dname);
		finish_pod(pod);
		cJSON_AddItemToArray(d->out, pod);
		cJSON_Delete(pl);
		buf_release(&pn);
	}

	/* EPP Service: one port per named container port */
	svc = new_object(d, "v1", "Service", sname, cJSON_Duplicate(labels, 1), NULL, NULL);
	sspec = cJSON_AddObjectToObject(svc, "spec");
	cJSON_AddStringToObject(sspec, "type", "ClusterIP");
	cJSON_AddItemToObject(sspec, "selector", cJSON_Duplicate(labels, 1));
	ports = cJSON_AddArrayToObject(sspec, "ports");
	cs = json_member(ps, "containers");
	cJSON_ArrayForEach(c, cs) {
		const cJSON *cports = json_member(c, "ports");

		cJSON_ArrayForEach(port, cports) {
			const char *pn = json_member_str(port, "name");
			const cJSON *cp = json_member(port, "containerPort");
			cJSON *p;

			if (!pn || !cJSON_IsNumber(cp))
				continue;
			p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "name", pn);
			cJSON_AddNumberToObject(p, "port", cp->valueint);
			cJSON_AddStringToObject(p, "targetPort", pn);
			cJSON_AddStringToObject(p, "protocol", "TCP");
			cJSON_AddItemToArray(ports, p);
		}
	}
	cJSON_AddItemToArray(d->out, svc);

	/* InferencePool */
	pool = new_object(d, "inference.networking.x-k8s.io/v1alpha2", "InferencePool", pname,
	    cJSON_Duplicate(labels, 1), NULL, NULL);
	{
		const cJSON *pspec = json_member(json_member(sched, "pool"), "spec");
		cJSON *s = cJSON_IsObject(pspec) ? cJSON_Duplicate(pspec, 1) : cJSON_CreateObject();
		cJSON *sel = cJSON_GetObjectItemCaseSensitive(s, "selector"), *ext;

		if (!cJSON_IsObject(sel) || !sel->child) {
			cJSON_DeleteItemFromObjectCaseSensitive(s, "selector");
			cJSON_AddItemToObject(s, "selector", naming_workload_selector(d->name));
		}
		if (!cJSON_IsNumber(json_member(s, "targetPortNumber")))
			cJSON_AddNumberToObject(s, "targetPortNumber", 8000);
		ext = obj_child(s, "extensionRef");
		if (!json_member_str(ext, "name"))
			cJSON_AddStringToObject(ext, "name", sname);
		cJSON_AddItemToObject(pool, "spec", s);
	}
	cJSON_AddItemToArray(d->out, pool);

	/* InferenceModel */
	model = new_object(d, "inference.networking.x-k8s.io/v1alpha2", "InferenceModel", mname,
	    cJSON_Duplicate(labels, 1), NULL, NULL);
	mspec = cJSON_AddObjectToObject(model, "spec");
	cJSON_AddStringToObject(mspec, "modelName", d->model_name);
	pr = cJSON_AddObjectToObject(mspec, "poolRef");
	cJSON_AddStringToObject(pr, "group", "inference.networking.x-k8s.io");
	cJSON_AddStringToObject(pr, "kind", "InferencePool");
	cJSON_AddStringToObject(pr, "name", pname);
	cJSON_AddStringToObject(mspec, "criticality", crit ? crit : "Critical");
	cJSON_AddItemToArray(d->out, model);

	cJSON_Delete(ps);
	cJSON_Delete(labels);
	free(dname);
	free(sname);
	free(pname);
	free(mname);
}

static void
derive_route(struct dctx *d, const cJSON *router)
{
	const cJSON *hspec = json_member(json_member(json_member(router, "route"), "http"), "spec");
	const cJSON *grefs = json_member(json_member(router, "gateway"), "refs"), *r;
	char *name;
	cJSON *route, *spec;

	if (!cJSON_IsObject(hspec))
		return;
	name = llmd_child_name(d->name, SFX_ROUTE);
	route = new_object(d, "gateway.networking.k8s.io/v1", "HTTPRoute", name,
	    naming_labels(d->name, COMP_ROUTER, 0, NULL), NULL, NULL);
	spec = cJSON_Duplicate(hspec, 1);
	if (cJSON_IsArray(grefs) && grefs->child) {
		cJSON *prs = cJSON_CreateArray();

		cJSON_ArrayForEach(r, grefs) {
			cJSON *p = cJSON_CreateObject();
			const char *ns = json_member_str(r, "namespace");

			cJSON_AddStringToObject(p, "group", "gateway.networking.k8s.io");
			cJSON_AddStringToObject(p, "kind", "Gateway");
			cJSON_AddStringToObject(p, "name", json_member_str(r, "name") ? json_member_str(r, "name") : "");
			cJSON_AddStringToObject(p, "namespace", ns && ns[0] ? ns : d->ns);
			cJSON_AddItemToArray(prs, p);
		}
		cJSON_DeleteItemFromObjectCaseSensitive(spec, "parentRefs");
		cJSON_AddItemToObject(spec, "parentRefs", prs);
	}
	cJSON_AddItemToObject(route, "spec", spec);
	cJSON_AddItemToArray(d->out, route);
	free(name);
}

int
llmisvc_derive(const cJSON *merged, const struct reconcile_env *env, cJSON **children,
    struct llmd_err *e)
{
	const cJSON *md = json_member(merged, "metadata"), *spec = json_member(merged, "spec");
	const cJSON *router = json_member(spec, "router"), *sched = json_member(router, "scheduler");
	const cJSON *poolref = json_member(json_member(sched, "pool"), "ref");
	struct dctx d = { 0 };
	char *pool = NULL;

	*children = NULL;
	d.name = json_member_str(md, "name");
	d.ns = json_member_str(md, "namespace") ? json_member_str(md, "namespace") : "default";
	if (!d.name)
		return err_set(e, -EINVAL, "metadata.name", "required value");
	if (!cJSON_IsObject(spec))
		return err_set(e, -EINVAL, "spec", "required value");
	d.spec = spec;
	d.model_uri = json_member_str(json_member(spec, "model"), "uri");
	d.model_name = json_member_str(json_member(spec, "model"), "name");
	if (!d.model_name)
		d.model_name = d.name;
	if (!d.model_uri)
		return err_set(e, -EINVAL, "spec.model.uri",
		    "required value (neither the service nor a preset or baseRef sets it)");
	d.has_prefill = present(spec, "prefill");
	if (present(spec, "router")) {
		if (cJSON_IsObject(poolref) && json_member_str(poolref, "name"))
			d.pool_name = json_member_str(poolref, "name");
		else
			d.pool_name = pool = llmd_child_name(d.name, SFX_POOL);
	}
	d.out = cJSON_CreateArray();
	derive_workload(&d, spec, 0);
	if (d.has_prefill)
		derive_workload(&d, json_member(spec, "prefill"), 1);
	derive_workload_service(&d);
	if (present(router, "scheduler") && !present(json_member(sched, "pool"), "ref"))
		derive_scheduler(&d, sched);
	if (router)
		derive_route(&d, router);
	free(pool);
	*children = d.out;
	return 0;
}
