/*
 * daemon/placement.h - GPU-aware placement of pods onto nodes, the
 * kube-scheduler subset llmd needs. placement_schedule() and struct
 * placement_result are declared in daemon/reconcile.h.
 *
 * Filters (each failing node counted under one reason, first that applies):
 *   spec.unschedulable          "node(s) were cordoned"
 *   Ready condition not True    "node(s) were not ready"
 *   untolerated NoSchedule/NoExecute taint
 *                               "node(s) had untolerated taint {key: value}"
 *   pod spec.nodeSelector       "node(s) didn't match Pod's node selector"
 *   free nvidia.com/gpu < need  "Insufficient nvidia.com/gpu"
 * A failure reads "0/N nodes are available: <count> <reason>, ...." with the
 * reasons by count, largest first (ties by text).
 * Scoring among feasible nodes: fewest pods of the same workload role on the
 * node first (spread replicas), then the fewest free GPUs left (bin-pack).
 * Pods labelled leaderworkerset.sigs.k8s.io/group-key are placed all or
 * nothing per group. Free GPUs: status.allocatable (else capacity) minus the
 * requests of bound pods and of pods already carrying spec.nodeName.
 * A node without a Ready condition counts as ready.
 */
#ifndef LLMD_DAEMON_PLACEMENT_H
#define LLMD_DAEMON_PLACEMENT_H

#include "daemon/reconcile.h"

#endif
