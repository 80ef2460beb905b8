/*
 * daemon/surge.h - surge-then-stop for the pods of a draining node: a pod
 * on a node being drained (an agent's Slurm allocation ending, or
 * `llmd-admin drain`) keeps running until a replacement on another node is
 * Ready, and only then is deleted, so a service with capacity elsewhere
 * never loses its last serving replica to a drain.
 *
 * A node drains when spec.unschedulable is true and spec.taints holds
 * SURGE_DRAIN_TAINT (both set by POST /agent/v1/drain and llmd-admin
 * drain; uncordon clears both). A replacement is named
 * "<slot>-s<5 hex>" and annotated SURGE_REPLACES_ANNOTATION=<slot>, the
 * slot being the pod name derive gave that replica; it keeps the slot until
 * the template changes (a new template hash, so a new slot name).
 * LeaderWorkerSet group pods are not surged: a group moves as a whole
 * (the drain deletes them, RecreateGroupOnPodRestart).
 */
#ifndef LLMD_DAEMON_SURGE_H
#define LLMD_DAEMON_SURGE_H

#include <cjson/cJSON.h>

#define SURGE_DRAIN_TAINT          "llmd.ai/draining"
#define SURGE_REPLACES_ANNOTATION  "llmd.ai/replaces"
#define SURGE_LWS_GROUP_KEY        "leaderworkerset.sigs.k8s.io/group-key"

/* ---- daemon/surge-rules.c (llmd-admin builds it too) ---- */

/* Is this Node object draining (cordoned and carrying the drain taint)? */
int surge_node_draining(const cJSON *node);
/* Sets (on) or clears both spec.unschedulable and the drain taint. */
void surge_spec_set_draining(cJSON *spec, int on);
/* Is the pod a LeaderWorkerSet group member (the group moves whole)? */
int surge_pod_grouped(const cJSON *pod);
/* Is the pod replaced before it goes (a service's, not grouped)? */
int surge_pod_replaced(const cJSON *pod);

/* ---- daemon/surge.c ---- */

/*
 * Rewrites desired (the derived children, an array) against observed (the
 * service's stored children) and nodes (every Node object): each desired
 * pod whose stored holders are all on draining nodes gains an unbound
 * replacement next to them; once a holder off the draining nodes is Ready,
 * the draining ones drop out of desired (so the reconciler deletes them);
 * a replacement that holds a slot stays desired under its own name.
 * Returns the number of pods added or kept beyond one per slot.
 */
int surge_plan(cJSON *desired, const cJSON *observed, const cJSON *nodes);

#endif
