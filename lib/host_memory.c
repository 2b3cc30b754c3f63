/* Host memory figures (see host_memory.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/host_memory.h"

/* A file holding one decimal number; -1 when it cannot be read. */
static int64_t read_number(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int64_t v;
	if (fscanf(f, "%" SCNd64, &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

int host_memory_usage_self(struct host_memory_usage *u)
{
	memset(u, 0, sizeof(*u));
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -errno;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		uint64_t v;
		if (sscanf(line, "VmRSS: %" SCNu64, &v) == 1)
			u->rss_kib = v;
		else if (sscanf(line, "RssAnon: %" SCNu64, &v) == 1)
			u->rss_anon_kib = v;
		else if (sscanf(line, "RssShmem: %" SCNu64, &v) == 1)
			u->rss_shmem_kib = v;
	}
	fclose(f);
	u->ksm_merging_pages = read_number("/proc/self/ksm_merging_pages");
	return 0;
}

int host_ksm_read(struct host_ksm *k)
{
	k->run = (int)read_number("/sys/kernel/mm/ksm/run");
	k->pages_shared = read_number("/sys/kernel/mm/ksm/pages_shared");
	k->pages_sharing = read_number("/sys/kernel/mm/ksm/pages_sharing");
	k->pages_unshared = read_number("/sys/kernel/mm/ksm/pages_unshared");
	k->full_scans = read_number("/sys/kernel/mm/ksm/full_scans");
	return k->run < 0 ? -ENOENT : 0;
}
