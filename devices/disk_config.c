/* Parsing of --disk and --cdrom arguments (see devices/disk.h for the syntax). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk.h"
#include "lib/error.h"

static const char *const bus_names[] = {"sata", "ide", "scsi", "nvme", "virtio", "sas"};
static const char *const cache_names[] = {"writeback", "none", "directsync", "unsafe"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *disk_bus_name(enum disk_bus bus)
{
	return (unsigned)bus < COUNT(bus_names) ? bus_names[bus] : "?";
}
const char *disk_cache_name(enum disk_cache cache)
{
	return (unsigned)cache < COUNT(cache_names) ? cache_names[cache] : "?";
}

static int lookup(const char *const *names, size_t n, const char *word)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], word))
			return (int)i;
	return -1;
}

void disk_config_free(struct disk_config *cfg)
{
	free(cfg->path);
	free(cfg->format);
	cfg->path = cfg->format = NULL;
}

/* controller=nvmeN: the NVMe controller (0-7) the disk is a namespace of; bus=nvme is checked
 * once the whole argument is read (the options may come in any order). */
static int disk_config_controller(const char *val, const char *opt, struct disk_config *cfg)
{
	if (strncmp(val, "nvme", 4) || val[4] < '0' || val[4] > '7' || val[5])
		return error_set(-EINVAL, "%s: unknown controller '%s' (nvme0 ... nvme7)", opt,
				 val);
	cfg->controller = (unsigned)(val[4] - '0');
	cfg->controller_given = true;
	return 0;
}

/* One "key=value" or bare MODE word after the file name. `seen` catches repeated keys, which
 * would otherwise silently override each other. */
static int disk_config_word(char *word, const char *opt, struct disk_config *cfg, unsigned *seen)
{
	enum {
		SEEN_MODE = 1,
		SEEN_BUS = 2,
		SEEN_FORMAT = 4,
		SEEN_CACHE = 8,
		SEEN_CONTROLLER = 16,
		SEEN_WERROR = 32
	};
	bool cdrom = cfg->media == DISK_MEDIA_CDROM;
	char *eq = strchr(word, '=');
	unsigned bit;
	int v;

	if (!eq) {
		if (cdrom)
			goto bad_key;
		v = disk_mode_lookup(word);
		if (v < 0)
			return error_set(
			    -EINVAL,
			    "%s: unknown disk mode '%s' (normal, immutable, writethrough, "
			    "shareable, multiattach, readonly)",
			    opt, word);
		bit = SEEN_MODE;
		cfg->mode = v;
	} else {
		*eq = 0;
		const char *val = eq + 1;
		if (!strcmp(word, "bus")) {
			v = lookup(bus_names, COUNT(bus_names), val);
			if (v < 0 || (cdrom && v != DISK_BUS_IDE && v != DISK_BUS_SATA &&
				      v != DISK_BUS_SCSI))
				return error_set(-EINVAL, "%s: unknown bus '%s' (%s)", opt, val,
						 cdrom ? "ide, sata, scsi"
						       : "ide, sata, scsi, sas, nvme, virtio");
			bit = SEEN_BUS;
			cfg->bus = v;
		} else if (!strcmp(word, "format") && !cdrom) {
			if (!val[0])
				return error_set(-EINVAL, "%s: empty format name", opt);
			bit = SEEN_FORMAT;
			free(cfg->format);
			cfg->format = strdup(val);
			if (!cfg->format)
				return error_set(-ENOMEM, "%s: out of memory", opt);
		} else if (!strcmp(word, "cache") && !cdrom) {
			v = lookup(cache_names, COUNT(cache_names), val);
			if (v < 0)
				return error_set(
				    -EINVAL,
				    "%s: unknown cache mode '%s' (writeback, none, directsync, "
				    "unsafe)",
				    opt, val);
			bit = SEEN_CACHE;
			cfg->cache = v;
		} else if (!strcmp(word, "controller") && !cdrom) {
			if (disk_config_controller(val, opt, cfg) < 0)
				return -EINVAL;
			bit = SEEN_CONTROLLER;
		} else if (!strcmp(word, "werror") && !cdrom) {
			if (strcmp(val, "report") && strcmp(val, "stop"))
				return error_set(-EINVAL, "%s: unknown werror '%s' (report, stop)",
						 opt, val);
			bit = SEEN_WERROR;
			cfg->werror = strcmp(val, "stop") ? DISK_WERROR_REPORT : DISK_WERROR_STOP;
		} else {
			goto bad_key;
		}
	}
	if (*seen & bit)
		return error_set(-EINVAL, "%s: '%s' given twice", opt,
				 bit == SEEN_MODE ? "mode" : word);
	*seen |= bit;
	return 0;
bad_key:
	return error_set(-EINVAL, "%s: unknown option '%s'", opt, word);
}

int disk_config_parse(const char *arg, enum disk_media media, struct disk_config *out)
{
	const char *opt = media == DISK_MEDIA_CDROM ? "--cdrom" : "--disk";
	unsigned seen = 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	out->media = media;
	/* Disks default to SATA (AHCI); the CD-ROM to the IDE secondary master, like VirtualBox. */
	out->bus = media == DISK_MEDIA_CDROM ? DISK_BUS_IDE : DISK_BUS_SATA;
	if (!arg || !arg[0] || arg[0] == ',')
		return error_set(-EINVAL, "%s: missing file name", opt);
	char *copy = strdup(arg);
	if (!copy)
		return error_set(-ENOMEM, "%s: out of memory", opt);
	char *save = NULL;
	char *word = strtok_r(copy, ",", &save);
	out->path = strdup(word);
	if (!out->path) {
		ret = error_set(-ENOMEM, "%s: out of memory", opt);
	}
	/* strtok_r skips empty fields: an empty one ("a,,b" or a trailing comma) is a typo worth
	 * reporting, so look for it first. */
	if (!ret && (strstr(arg, ",,") || arg[strlen(arg) - 1] == ',')) {
		ret = error_set(-EINVAL, "%s: empty option in '%s'", opt, arg);
	}
	while (!ret && (word = strtok_r(NULL, ",", &save)))
		ret = disk_config_word(word, opt, out, &seen);
	if (!ret && out->controller_given && out->bus != DISK_BUS_NVME) {
		ret = error_set(-EINVAL, "%s: controller= is for bus=nvme", opt);
	}
	free(copy);
	if (ret)
		disk_config_free(out);
	return ret;
}
