/* The execution cap through cgroup v2 cpu.max (cpu_cgroup.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/cpu_cap.h"
#include "cpu/cpu_cgroup.h"
#include "cpu/cpus.h"

struct cpu_cgroup {
	char dir[4096];
	unsigned n;				    /* vCPU cgroups made: 0..n-1 */
	int threads_fd[CPUS_MAX], max_fd[CPUS_MAX]; /* opened up front: the vCPUs are sandboxed */
	int home_fd;				    /* the process's cgroup.threads */
};

static int write_str(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));
	if (n < 0)
		return -errno;
	return (size_t)n == strlen(s) ? 0 : -EIO;
}

static int write_file(const char *dir, const char *name, const char *s)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int r = write_str(fd, s);
	close(fd);
	return r;
}

/* Whether the file dir/name lists `word` among its space-separated words. */
static int has_word(const char *dir, const char *name, const char *word, bool *yes)
{
	char p[4200], buf[512], *save = NULL;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = 0;
	*yes = false;
	for (char *w = strtok_r(buf, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
		if (strcmp(w, word) == 0)
			*yes = true;
	return 0;
}

/* The path of vCPU id's cgroup (and a file in it, if `file`). */
static void vcpu_path(const struct cpu_cgroup *g, unsigned id, const char *file, char *p,
		      size_t len)
{
	snprintf(p, len, "%s/minivmm-%ld-vcpu%u%s%s", g->dir, (long)getpid(), id, file ? "/" : "",
		 file ? file : "");
}

void cpu_cgroup_close(struct cpu_cgroup *g)
{
	if (!g)
		return;
	if (g->home_fd >= 0)
		close(g->home_fd);
	for (unsigned i = 0; i < g->n; i++) {
		char p[4300];
		if (g->threads_fd[i] >= 0)
			close(g->threads_fd[i]);
		if (g->max_fd[i] >= 0)
			close(g->max_fd[i]);
		vcpu_path(g, i, NULL, p, sizeof(p));
		/* empty once its thread ended (else the kernel refuses and it stays); unlinkat, not
		 * rmdir: the sandboxed loop thread may make that call */
		unlinkat(AT_FDCWD, p, AT_REMOVEDIR);
	}
	free(g);
}

int cpu_cgroup_open(const char *dir, unsigned max_cpus, struct cpu_cgroup **out)
{
	if (max_cpus < 1 || max_cpus > CPUS_MAX || strlen(dir) >= 4000)
		return -EINVAL;
	bool cpu = false;
	int r = has_word(dir, "cgroup.controllers", "cpu", &cpu);
	if (r < 0)
		return r;
	if (!cpu)
		return -ENOTSUP;
	char p[4300];
	snprintf(p, sizeof(p), "%s/cgroup.subtree_control", dir);
	if (access(dir, W_OK) < 0 || access(p, W_OK) < 0)
		return -EACCES;
	struct cpu_cgroup *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	strcpy(g->dir, dir);
	snprintf(p, sizeof(p), "%s/cgroup.threads", dir);
	g->home_fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (g->home_fd < 0)
		r = -errno;
	/* Threaded children first: the process's cgroup becomes their threaded domain and may keep
	 * its own threads while the cpu controller is on below it. */
	for (; r == 0 && g->n < max_cpus; g->n++) {
		unsigned i = g->n;
		g->threads_fd[i] = g->max_fd[i] = -1;
		vcpu_path(g, i, NULL, p, sizeof(p));
		if (mkdir(p, 0755) < 0) {
			r = -errno;
			break;
		}
		r = write_file(p, "cgroup.type", "threaded");
	}
	if (r == 0 && has_word(dir, "cgroup.subtree_control", "cpu", &cpu) == 0 && !cpu)
		r = write_file(dir, "cgroup.subtree_control", "+cpu");
	for (unsigned i = 0; r == 0 && i < g->n; i++) {
		vcpu_path(g, i, "cgroup.threads", p, sizeof(p));
		if ((g->threads_fd[i] = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
			r = -errno;
		vcpu_path(g, i, "cpu.max", p, sizeof(p));
		if (r == 0 && (g->max_fd[i] = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
			r = -errno;
	}
	if (r == 0)
		r = cpu_cgroup_set_cap(g, 100);
	if (r < 0) {
		cpu_cgroup_close(g);
		return r;
	}
	*out = g;
	return 0;
}

int cpu_cgroup_join(struct cpu_cgroup *g, unsigned id)
{
	if (id >= g->n)
		return -EINVAL;
	return write_str(g->threads_fd[id], "0"); /* 0: the writing thread */
}

int cpu_cgroup_leave(struct cpu_cgroup *g)
{
	return write_str(g->home_fd, "0");
}

int cpu_cgroup_set_cap(struct cpu_cgroup *g, unsigned percent)
{
	if (percent < 1 || percent > 100)
		return -EINVAL;
	char v[64];
	if (percent == 100)
		snprintf(v, sizeof(v), "max %lld\n", CPU_CAP_PERIOD_NS / 1000);
	else
		snprintf(v, sizeof(v), "%lld %lld\n", CPU_CAP_PERIOD_NS / 1000 * percent / 100,
			 CPU_CAP_PERIOD_NS / 1000);
	int r = 0;
	for (unsigned i = 0; i < g->n; i++)
		if (pwrite(g->max_fd[i], v, strlen(v), 0) < 0 && r == 0)
			r = -errno;
	return r;
}

const char *cpu_cgroup_dir(const struct cpu_cgroup *g)
{
	return g->dir;
}

int cpu_cgroup_find(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -errno;
	char line[4096], rel[4096] = "";
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			snprintf(rel, sizeof(rel), "%s", line + 3);
			rel[strcspn(rel, "\n")] = 0;
		}
	fclose(f);
	if (!rel[0])
		return -ENOENT; /* no cgroup v2 hierarchy */
	if (strcmp(rel, "/") == 0)
		return -EPERM;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char mnt[4096] = "";
	while (fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPER */
		char root[1024], point[2048];
		const char *dash = strstr(line, " - cgroup2 ");
		if (dash && sscanf(line, "%*s %*s %*s %1023s %2047s", root, point) == 2 &&
		    strcmp(root, "/") == 0) {
			snprintf(mnt, sizeof(mnt), "%s", point);
			break;
		}
	}
	fclose(f);
	if (!mnt[0])
		return -ENOENT;
	if ((size_t)snprintf(out, len, "%s%s", mnt, rel) >= len)
		return -ENAMETOOLONG;
	return 0;
}
