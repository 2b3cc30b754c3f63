/* The cap's cgroup (cpu/cpu_cgroup.h) on a directory laid out as a delegated cgroup v2 (plain
 * files standing for cgroupfs): the threaded vCPU cgroups, +cpu below the process's cgroup,
 * cpu.max for each cap, the join of a thread, and the refusals that send the cap back to the VMM
 * (no cpu controller, not writable, a name taken, bad arguments). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpu/cpu_cgroup.h"

static char dir[64];

static void put(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The first line of dir/name (a shorter rewrite leaves the old tail after it in a plain file). */
static const char *first_line(const char *name)
{
	static char buf[256];
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	buf[0] = 0;
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

static const char *vcpu_file(unsigned id, const char *file)
{
	static char p[128];
	snprintf(p, sizeof(p), "minivmm-%ld-vcpu%u/%s", (long)getpid(), id, file);
	return p;
}

static int setup(void **unused)
{
	(void)unused;
	snprintf(dir, sizeof(dir), "/tmp/test_cpu_cgroup.XXXXXX");
	assert_non_null(mkdtemp(dir));
	put("cgroup.controllers", "cpuset cpu io memory pids\n");
	put("cgroup.subtree_control", "");
	return 0;
}

static int teardown(void **unused)
{
	(void)unused;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_delegated(void **unused)
{
	(void)unused;
	struct cpu_cgroup *g = NULL;
	assert_int_equal(cpu_cgroup_open(dir, 2, &g), 0);
	assert_string_equal(cpu_cgroup_dir(g), dir);
	assert_string_equal(first_line("cgroup.subtree_control"), "+cpu");
	for (unsigned i = 0; i < 2; i++) {
		assert_string_equal(first_line(vcpu_file(i, "cgroup.type")), "threaded");
		assert_string_equal(first_line(vcpu_file(i, "cpu.max")), "max 100000");
	}
	assert_int_equal(cpu_cgroup_set_cap(g, 30), 0);
	assert_string_equal(first_line(vcpu_file(0, "cpu.max")), "30000 100000");
	assert_string_equal(first_line(vcpu_file(1, "cpu.max")), "30000 100000");
	assert_int_equal(cpu_cgroup_set_cap(g, 1), 0);
	assert_string_equal(first_line(vcpu_file(1, "cpu.max")), "1000 100000");
	assert_int_equal(cpu_cgroup_set_cap(g, 0), -EINVAL);
	assert_int_equal(cpu_cgroup_set_cap(g, 101), -EINVAL);
	assert_int_equal(cpu_cgroup_set_cap(g, 100), 0);
	assert_string_equal(first_line(vcpu_file(1, "cpu.max")), "max 100000");
	assert_int_equal(cpu_cgroup_join(g, 1), 0);
	assert_string_equal(first_line(vcpu_file(1, "cgroup.threads")), "0"); /* the caller */
	assert_int_equal(cpu_cgroup_join(g, 2), -EINVAL);		      /* no such vCPU */
	cpu_cgroup_close(g);
	cpu_cgroup_close(NULL);
}

static void test_refused(void **unused)
{
	(void)unused;
	struct cpu_cgroup *g = NULL;
	assert_int_equal(cpu_cgroup_open(dir, 0, &g), -EINVAL);
	assert_int_equal(cpu_cgroup_open(dir, 65, &g), -EINVAL);
	put("cgroup.controllers", "cpuset io memory pids\n"); /* the parent gave no cpu */
	assert_int_equal(cpu_cgroup_open(dir, 1, &g), -ENOTSUP);
	put("cgroup.controllers", "cpuset cpu\n");
	char p[256];
	snprintf(p, sizeof(p), "%s/cgroup.subtree_control", dir);
	assert_int_equal(unlink(p), 0); /* nothing to write the controller into */
	assert_int_equal(cpu_cgroup_open(dir, 1, &g), -EACCES);
	put("cgroup.subtree_control", "cpu\n");
	/* a vCPU cgroup's name taken: refused, not shared */
	snprintf(p, sizeof(p), "%s/minivmm-%ld-vcpu1", dir, (long)getpid());
	put(strrchr(p, '/') + 1, "");
	assert_int_equal(cpu_cgroup_open(dir, 2, &g), -EEXIST);
	assert_null(g);
	snprintf(p, sizeof(p), "%s/none", dir);
	assert_int_equal(cpu_cgroup_open(p, 1, &g), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_delegated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
