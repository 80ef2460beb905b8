/*
 * tests/unit/test-daemon-naming.c - ChildName (expected values computed
 * independently with md5sum while writing the test), labels, DNS rules.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/naming.h"

#define LONG66 "llama-3-3-70b-instruct-fp8-dynamic-prefill-decode-disaggregated-x1"

static const struct {
	const char *parent, *suffix, *want;
} child_names[] = {
	{ "my-llm", "-kserve", "my-llm-kserve" },
	{ "my-llm", "-kserve-workload-svc", "my-llm-kserve-workload-svc" },
	/* 56 + 7 = 63: kept verbatim */
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "-kserve",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-kserve" },
	/* printf %s LONG66 | md5sum = ae85e3c76a068e388688ef433aee7882 */
	{ LONG66, "-kserve-workload-svc", "llama-3-3-7ae85e3c76a068e388688ef433aee7882-kserve-workload-svc" },
	{ LONG66, "-kserve", "llama-3-3-70b-instruct-fae85e3c76a068e388688ef433aee7882-kserve" },
	{ LONG66, "-inference-pool", "llama-3-3-70b-inae85e3c76a068e388688ef433aee7882-inference-pool" },
	{ LONG66, "-kserve-self-signed-certs",
	  "llama-ae85e3c76a068e388688ef433aee7882-kserve-self-signed-certs" },
	{ LONG66, "-kserve-mn", "llama-3-3-70b-instrucae85e3c76a068e388688ef433aee7882-kserve-mn" },
	/* suffix >= 31: md5(parent+suffix), filled up with the suffix, trailing '-' stripped */
	{ "abcdefghijabcdefghijabcdefghijabcdefghij", "-this-is-a-very-long-suffix-xyz-abc",
	  "abcdefghijabcdefghijabcdefghijad3644970990df71683fefbe356ead64c" },
	{ "short", "-abcdefghijklmnopqrstuvwx--yzabcdefghijklmnopqrstuvwxyz0123456",
	  "short64bd1dbb83d15ad052768be27830030b-abcdefghijklmnopqrstuvwx" },
};

Test(daemon_naming, child_name_table)
{
	for (size_t i = 0; i < sizeof(child_names) / sizeof(child_names[0]); i++) {
		char *got = llmd_child_name(child_names[i].parent, child_names[i].suffix);

		cr_expect_str_eq(got, child_names[i].want, "case %zu", i);
		cr_expect_leq(strlen(got), 63, "case %zu", i);
		free(got);
	}
}

Test(daemon_naming, labels_and_selector)
{
	cJSON *l = naming_labels("svc", COMP_WORKLOAD_PREFILL, 1, "prefill");
	cJSON *s = naming_workload_selector("svc");

	cr_expect_str_eq(cJSON_GetObjectItem(l, LBL_PART_OF)->valuestring, "llminferenceservice");
	cr_expect_str_eq(cJSON_GetObjectItem(l, LBL_NAME)->valuestring, "svc");
	cr_expect_str_eq(cJSON_GetObjectItem(l, LBL_COMPONENT)->valuestring,
	    "llminferenceservice-workload-prefill");
	cr_expect_str_eq(cJSON_GetObjectItem(l, LBL_KSERVE_COMP)->valuestring, "workload");
	cr_expect_str_eq(cJSON_GetObjectItem(l, LBL_ROLE)->valuestring, "prefill");
	cr_expect_eq(cJSON_GetArraySize(s), 3);
	cr_expect_null(cJSON_GetObjectItem(s, LBL_ROLE));
	cJSON_Delete(l);
	cJSON_Delete(s);
}

Test(daemon_naming, dns_rules)
{
	cr_expect(naming_is_dns1123_label("a-b-1"));
	cr_expect(naming_is_dns1123_label("1abc"));
	cr_expect_not(naming_is_dns1123_label("-abc"));
	cr_expect_not(naming_is_dns1123_label("abc-"));
	cr_expect_not(naming_is_dns1123_label("Abc"));
	cr_expect_not(naming_is_dns1123_label("a_b"));
	cr_expect_not(naming_is_dns1035_label("1abc"));
	cr_expect(naming_is_dns1035_label("abc1"));
	cr_expect(naming_is_dns1123_subdomain("a.b-c.d"));
	cr_expect_not(naming_is_dns1123_subdomain("a..b"));
	cr_expect_not(naming_is_dns1123_label(
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 64 */
}
