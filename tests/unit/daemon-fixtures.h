/*
 * tests/unit/daemon-fixtures.h - helpers shared by the daemon logic
 * tests: YAML snippets to cJSON, files from the source tree, a config store
 * holding etc/presets and the example configs, and object finders.
 */
#ifndef LLMD_TESTS_DAEMON_FIXTURES_H
#define LLMD_TESTS_DAEMON_FIXTURES_H

#include <cjson/cJSON.h>

#include "daemon/reconcile.h"

/* Parses one YAML (or JSON) document; aborts the test on error. */
cJSON *fx_yaml(const char *text);
/* Path of a file in the source tree (static buffer). */
const char *fx_src(const char *rel);
/* A reconcile_env whose get_config serves etc/presets/ YAML files (namespace
 * llmd-system) and the LLMInferenceServiceConfig examples of etc/examples
 * (namespace "default"), plus anything added with fx_env_add(). */
struct reconcile_env *fx_env(void);
void fx_env_add(cJSON *config);   /* takes ownership */
void fx_env_free(void);

/* The child of that kind and name in an array, or NULL. */
const cJSON *fx_find(const cJSON *arr, const char *kind, const char *name);
int fx_count(const cJSON *arr, const char *kind);
/* A string by dotted path with [i] indexes ("spec.template.spec.containers[0].name"). */
const cJSON *fx_at(const cJSON *o, const char *path);
const char *fx_str(const cJSON *o, const char *path);
/* 1 if the string array at path contains s. */
int fx_has(const cJSON *o, const char *path, const char *s);

#endif
