/* `minivmm img VERB ...`: dispatch to the sub-verbs, and the messages they share.
 *
 * The command lines mirror qemu-img's so that its users need nothing new; errors are one line,
 * "minivmm img: FILE: problem", and the exit code is 1 on error as with qemu-img.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/core/block_path.h"
#include "storage/core/disk_lock.h"
#include "tools/img.h"
#include "tools/size.h"
#include "vmm/command.h"
#include "vmm/control.h"
#include "vmm/vm_state.h"

static const struct img_verb img_verbs[] = {
    {"create", "create -f FMT [-o key=value,...] [-b BACKING -F BACKING_FMT] FILE [SIZE]",
     img_create_main, false},
    {"info", "info [--output=human|json] [--backing-chain] [-f FMT] [-U] FILE", img_info_main,
     false},
    {"convert",
     "convert [-f FMT] [-O FMT] [-o ...] [-B BACKING -F FMT] [-n] [-c] [-p] [-S SIZE] [-m N] "
     "[-t CACHE] [-T SRC_CACHE] [-U] [-l snapshot.id=ID,snapshot.name=NAME | -l SNAPSHOT | "
     "-s SNAPSHOT] IN OUT",
     img_convert_main, false},
    {"check", "check [-r leaks|all] [--output=human|json] [-f FMT] [-U] FILE", img_check_main,
     false},
    {"compare", "compare [-f FMT] [-F FMT] [-s] [-U] A B", img_compare_main, false},
    {"resize", "resize [-f FMT] [--shrink] [--preallocation=MODE] FILE [+|-]SIZE", img_resize_main,
     false},
    {"snapshot", "snapshot -c NAME|-l [-U]|-a NAME|-d NAME FILE", img_snapshot_main, false},
    {"map", "map [--output=human|json] [-f FMT] [-U] FILE", img_map_main, false},
    {"rebase", "rebase [-u] [-f FMT] -b NEW [-F FMT] [-U] FILE", img_rebase_main, false},
    {"commit", "commit [-f FMT] [-d] FILE", img_commit_main, false},
    {"clonemedium", "clonemedium IN OUT [--format VDI|VMDK|VHD|RAW|QCOW2]", img_clonemedium_main,
     false},
    {"convertfromraw", "convertfromraw IN OUT [--format VDI|VMDK|VHD|RAW|QCOW2]",
     img_convertfromraw_main, false},
    {"bench",
     "bench [-c N] [-d DEPTH] [-f FMT] [-o OFFSET] [-s SIZE] [-S STEP] [-t CACHE] [-w] "
     "[--random] [--flush-interval=N] [--pattern=N] FILE (benchmarking)",
     img_bench_main, true},
};

#define IMG_VERB_COUNT (sizeof(img_verbs) / sizeof(img_verbs[0]))

static const struct img_verb *img_verb_find(const char *name)
{
	for (size_t i = 0; i < IMG_VERB_COUNT; i++)
		if (!strcmp(img_verbs[i].name, name))
			return &img_verbs[i];
	return NULL;
}

static void img_help(FILE *out)
{
	fprintf(out, "usage: minivmm img VERB [ARGS...]\n\n");
	for (size_t i = 0; i < IMG_VERB_COUNT; i++)
		if (!img_verbs[i].hidden)
			fprintf(out, "  minivmm img %s\n", img_verbs[i].usage);
	fprintf(out,
		"\nImages a running VM holds are refused; -U (--force-share) reads them anyway,\n"
		"at your own risk (never for writing).\n"
		"\nAn image may name backing files, parents and extents only in its own directory\n"
		"(or below; no device nodes): --allow-backing-path DIR (any verb, repeatable)\n"
		"allows those under DIR.\n");
	fprintf(out, "\nSIZE takes the suffixes k, M, G, T (powers of 1024). Formats:");
	size_t n;
	const struct block_driver *const *drv = block_drivers(&n);
	for (size_t i = 0; i < n; i++)
		fprintf(out, " %s", drv[i]->name);
	fprintf(out, "\n");
}

int img_fail(const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "minivmm img: %s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int img_block_fail(const char *file)
{
	const char *msg = error_msg();
	size_t n = strlen(file);

	/* The block layer's messages already start with the file they are about. */
	if (!strncmp(msg, file, n) && msg[n] == ':')
		fprintf(stderr, "minivmm img: %s\n", msg);
	else
		fprintf(stderr, "minivmm img: %s: %s\n", file, msg);
	return 1;
}

int img_usage_fail(const char *verb, const char *problem)
{
	const struct img_verb *v = img_verb_find(verb);
	fprintf(stderr, "minivmm img: %s: %s (usage: minivmm img %s)\n", verb, problem,
		v ? v->usage : verb);
	return 1;
}

void img_getopt_reset(void)
{
	optind = 0; /* glibc: 0 re-initialises the parser */
	opterr = 0;
}

int img_bad_option(const char *verb, int argc, char **argv)
{
	char problem[160];
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";

	/* getopt leaves the option character in optopt (0 for a long option it does not know). */
	if (optopt >= '0' && optopt <= '9')
		snprintf(problem, sizeof(problem), "invalid size '%s': sizes cannot be negative",
			 arg);
	else if (optopt)
		snprintf(problem, sizeof(problem), "option -%c is unknown or lacks its argument",
			 optopt);
	else
		snprintf(problem, sizeof(problem), "unknown or incomplete option '%s'", arg);
	return img_usage_fail(verb, problem);
}

int img_parse_size(const char *what, const char *text, uint64_t *out)
{
	int ret = size_parse(text, out);

	if (ret == -ERANGE)
		return img_fail(what, "size '%s' is too large", text);
	if (ret < 0)
		return img_fail(
		    what, "invalid size '%s' (use a number with an optional k, M, G or T suffix)",
		    text);
	return 0;
}

/* A file system without locks (some NFS, FUSE): proceed as qemu-img does, but say once that the
 * images there are not protected from running VMs. */
static void img_lock_warn(unsigned before)
{
	static bool warned;
	char last[512];

	if (warned || disk_lock_unsupported(last, sizeof(last)) == before)
		return;
	warned = true;
	fprintf(stderr,
		"minivmm img: %s: warning: the file system does not support locks; running VMs "
		"cannot keep this command off their images\n",
		last);
}

int img_open(const char *file, const char *fmt, int flags, struct block_device **out)
{
	*out = NULL;
	if (fmt && !block_driver_find(fmt))
		return img_fail(file, "unknown format '%s'", fmt);
	if ((flags & IMG_OPEN_SHARE) && (flags & BLOCK_OPEN_RDWR))
		return img_fail(file, "-U (--force-share) is for reading only, and this command "
				      "writes the image");
	if (flags & IMG_OPEN_SHARE)
		flags &= ~IMG_OPEN_SHARE;
	else
		flags |= BLOCK_OPEN_LOCK;
	unsigned unlocked = disk_lock_unsupported(NULL, 0);
	if (block_open(file, fmt, flags, out) < 0)
		return img_block_fail(file);
	img_lock_warn(unlocked);
	return 0;
}

const char *img_vbox_format(const char *name)
{
	static const char *const map[][2] = {
	    {"vdi", "vdi"}, {"vmdk", "vmdk"}, {"vhd", "vpc"}, {"raw", "raw"}, {"qcow2", "qcow2"},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcasecmp(name, map[i][0]))
			return map[i][1];
	return NULL;
}

bool img_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* Compare the buffer with itself shifted by 16: memcmp is vectorised, a byte loop is not.
	 */
	if (len < 16) {
		for (size_t i = 0; i < len; i++)
			if (p[i])
				return false;
		return true;
	}
	for (size_t i = 0; i < 16; i++)
		if (p[i])
			return false;
	return memcmp(p, p + 16, len - 16) == 0;
}

/* `--allow-backing-path DIR` (any verb, repeatable): images may name files under DIR
 * (storage/core/block_path.h). Taken out of argv before the verb parses it. 0, or the exit code. */
static int img_allow_paths(int *argc, char **argv)
{
	int out = 2;

	for (int i = 2; i < *argc; i++) {
		const char *dir = NULL;
		if (!strcmp(argv[i], "--allow-backing-path") && i + 1 < *argc)
			dir = argv[++i];
		else if (!strncmp(argv[i], "--allow-backing-path=", 21))
			dir = argv[i] + 21;
		else if (!strcmp(argv[i], "--")) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		} else {
			argv[out++] = argv[i];
			continue;
		}
		int ret = dir[0] ? block_path_allow_dir(dir) : -EINVAL;
		if (ret < 0)
			return img_fail("--allow-backing-path", "%s: %s", dir[0] ? dir : "(empty)",
					strerror(-ret));
	}
	argv[out] = NULL;
	*argc = out;
	return 0;
}

static int img_main(int argc, char **argv)
{
	if (argc < 2) {
		img_help(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		img_help(stdout);
		return 0;
	}
	/* Running VMs list the images they lock in the control runtime dir: name the holder. */
	disk_lock_registry_dir_fn(control_runtime_dir);
	const struct img_verb *v = img_verb_find(argv[1]);
	if (!v)
		return img_fail(argv[1], "unknown command (try 'minivmm img help')");
	int ret = img_allow_paths(&argc, argv);
	if (ret)
		return ret;
	/* Layers in a VM's state directory name that VM's disks (vmm/vm_state.h). */
	for (int i = 2; i < argc; i++) {
		struct stat st;
		if (argv[i][0] != '-' && stat(argv[i], &st) == 0 && S_ISREG(st.st_mode))
			vm_state_allow_recorded_disks(argv[i]);
	}
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: minivmm img %s\n", v->usage);
			return 0;
		}
	return v->run(argc - 1, argv + 1);
}

static const struct command img_command = {
    .name = "img",
    .summary = "create, inspect, convert and check disk images (as qemu-img)",
    .run = img_main,
};
COMMAND(img_command);
