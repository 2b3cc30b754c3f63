/* `minivmm run`: boot a Linux bzImage in a new VM.  Exit codes: 0 guest powered off, rebooted
 * (--reboot exit) or stopped; 2 bad command line or kernel file; 1 the VM could not be built or
 * failed while running; 128+N ended by signal N. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/core/block_path.h"
#include "vmm/boot_bzimage.h"
#include "vmm/boot_firmware.h"
#include "vmm/command.h"
#include "vmm/control_internal.h"
#include "vmm/vm.h"
#include "vmm/vm_config.h"
#include "vmm/vm_internal.h"
#include "vmm/vm_nics.h"
#include "lib/error.h"
#include "lib/jail.h"
#include "lib/log.h"
#include "lib/error.h"

#define KERNEL_MAX_BYTES (512 * MiB)

/* Read the whole kernel file; -errno with a message naming it. */
static int read_kernel(const char *path, uint8_t **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set(-errno, "%s: %s", path, strerror(errno));
	struct stat st;
	int r = 0;
	uint8_t *buf = NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = error_set(-EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > (off_t)KERNEL_MAX_BYTES) {
		r = error_set(-EFBIG, "%s: %lld bytes is too big for a kernel", path,
			      (long long)st.st_size);
		goto out;
	}
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf) {
		r = -ENOMEM;
		error_set(r, "%s: out of memory", path);
		goto out;
	}
	size_t done = 0;
	while (done < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + done, st.st_size - done, done);
		if (n <= 0) {
			r = error_set(-EIO, "%s: read failed", path);
			goto out;
		}
		done += n;
	}
	*data = buf;
	*len = done;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

/* Signals are taken by the main loop (signalfd): block them before any thread exists. */
static void block_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed console pipe or control client is not fatal */
}

/* Without --name a VM is called vm1, vm2, ...: the first name no running VM holds, so a user's
 * first VM is always vm1 (`minivmm control vm1 ...`).  Two starts at the same instant may pick
 * the same name; the second then stops with "already running", as with --name. */
static int pick_default_name(struct vm_config *cfg)
{
	for (unsigned n = 1; n <= 9999; n++) {
		char name[16];
		snprintf(name, sizeof(name), "vm%u", n);
		int held = control_lock_held(name);
		if (held < 0)
			return error_set(held, "cannot choose a VM name (%s): %s; give --name",
					 name, strerror(-held));
		if (!held) {
			snprintf(cfg->name, sizeof(cfg->name), "%s", name);
			return 0;
		}
	}
	return error_set(-EADDRINUSE, "vm1 to vm9999 are all running: give --name");
}

/* What images may name (storage/core/block_path.h): the files given on the command line (a snapshot
 * layer or an immutable diff in the state directory names the user's disk, wherever it is), and
 * every --allow-backing-path DIR. Before any disk opens, so that the order of --disk is moot. */
static int run_allow_paths(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nallow_paths; i++) {
		int ret = block_path_allow_dir(cfg->allow_paths[i]);
		if (ret < 0)
			return error_set(ret, "--allow-backing-path %s: %s", cfg->allow_paths[i],
					 strerror(-ret));
	}
	for (unsigned i = 0; i < cfg->ndisks; i++)
		if (cfg->disks[i].path)
			block_path_allow_file(cfg->disks[i].path); /* missing: its open says so */
	return 0;
}

static int run_main(int argc, char **argv)
{
	struct vm_config cfg;
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGE_SIZE);
	uint64_t host_mib = pages > 0 && psize > 0 ? (uint64_t)pages * psize / MiB : UINT64_MAX;
	if (vm_config_parse(argc, argv, host_mib, &cfg) < 0) {
		log_error(NULL, "%s", error_msg());
		return 2;
	}
	const char *sandbox_env = getenv("MINIVMM_SANDBOX");
	if (sandbox_env && !strcmp(sandbox_env, "off"))
		cfg.sandbox_off = true;
	if (!cfg.help && cfg.name_auto && pick_default_name(&cfg) < 0) {
		log_error(NULL, "%s", error_msg());
		vm_config_free(&cfg);
		return 1;
	}
	if (cfg.help) {
		fputs(vm_config_usage, stdout);
		vm_config_free(&cfg);
		return 0;
	}
	struct vm_kernel k = {0};
	uint8_t *img = NULL;
	if (!cfg.kernel) {
		/* A missing or malformed firmware image is a bad command line too. */
		struct firmware_image fw;
		int r;
		if (cfg.firmware_efi)
			r = firmware_flash_load(cfg.firmware_file ? cfg.firmware_file
								  : FIRMWARE_DEFAULT_OVMF_CODE,
						LAYOUT_FIRMWARE_MAX_SIZE, &fw);
		else
			r = firmware_image_load(
			    cfg.firmware_file ? cfg.firmware_file : FIRMWARE_DEFAULT_BIOS, &fw);
		if (r < 0) {
			log_error(NULL, "%s", error_msg());
			vm_config_free(&cfg);
			return 2;
		}
		firmware_image_free(&fw);
	} else if (read_kernel(cfg.kernel, &img, &k.len) < 0) {
		log_error(NULL, "%s", error_msg());
		vm_config_free(&cfg);
		return 2;
	}
	k.data = img;
	if (cfg.kernel && bzimage_parse(k.data, k.len, &k.hdr) < 0) {
		log_error(NULL, "%s: %s", cfg.kernel, error_msg());
		free(img);
		vm_config_free(&cfg);
		return 2;
	}
	if (cfg.initrd && access(cfg.initrd, R_OK) < 0) {
		log_error(NULL, "%s: %s", cfg.initrd, strerror(errno));
		free(img);
		vm_config_free(&cfg);
		return 2;
	}
	/* An unwritable console file is a bad command line, found before any VM exists. */
	int cfd = cfg.console == VM_CONSOLE_FILE
		      ? open(cfg.console_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)
		      : -2;
	if (cfd == -1) {
		log_error(NULL, "--console %s: %s", cfg.console_path, strerror(errno));
		free(img);
		vm_config_free(&cfg);
		return 2;
	}
	if (cfd >= 0)
		close(cfd);
	if (run_allow_paths(&cfg) < 0) {
		log_error(NULL, "%s", error_msg());
		free(img);
		vm_config_free(&cfg);
		return 2;
	}
	if (vm_nics_resolve(&cfg) < 0) {
		log_error(NULL, "%s", error_msg());
		free(img);
		vm_config_free(&cfg);
		return 2;
	}
	/* Still one thread: the jail's mount namespace is then every later thread's. */
	if (jail_prepare(&cfg.jail) < 0) {
		log_error(NULL, "%s", error_msg());
		free(img);
		vm_config_free(&cfg);
		return 2;
	}
	block_signals();
	struct vm *vm = NULL;
	int code = 1;
	/* The kernel stays loaded: a reboot with --reboot restart copies it into RAM again. */
	if (vm_create(&cfg, cfg.kernel ? &k : NULL, &vm) < 0)
		log_error(NULL, "%s", error_msg());
	else
		code = vm_run(vm);
	vm_destroy(vm);
	free(img);
	vm_config_free(&cfg);
	return code;
}

static const struct command run_command = {
    .name = "run",
    .summary = "boot a VM: its disks through firmware, or a Linux kernel directly",
    .run = run_main,
};
COMMAND(run_command);
