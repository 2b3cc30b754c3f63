/* OVMF's flash: code and the VM's variable store (vm_firmware_efi.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "devices/io_bus.h"
#include "devices/pflash.h"
#include "lib/log.h"
#include "memory/layout.h"
#include "vmm/boot_firmware.h"
#include "vmm/vm.h"
#include "vmm/vm_firmware_efi.h"
#include "vmm/vm_state.h"
#include "lib/error.h"

/* guest_memory_register uses 0 and 1; vm_firmware.c's BIOS takes 2 when there is no OVMF. */
#define EFI_CODE_KVM_SLOT 2
#define EFI_VARS_KVM_SLOT 3

struct firmware_efi {
	struct vm *vm;
	struct firmware_image code;
	uint8_t *vars;
	uint64_t vars_size, vars_base;
	int vars_fd;
	struct pflash *flash;
	bool code_slot, vars_slot, on_bus;
	char vars_path[4096];
};

static int set_slot(struct vm *vm, unsigned slot, uint64_t gpa, void *mem, uint64_t size)
{
	struct kvm_userspace_memory_region r = {
	    .slot = slot,
	    .flags = KVM_MEM_READONLY, /* writes exit as MMIO: commands for the flash */
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uintptr_t)mem,
	};
	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

/* pflash: read-array maps the store for direct reads; commands unmap it so reads exit too. */
static void vars_romd(void *opaque, bool on)
{
	struct firmware_efi *e = opaque;
	int r = set_slot(e->vm, EFI_VARS_KVM_SLOT, e->vars_base, e->vars, on ? e->vars_size : 0);
	if (r < 0)
		log_error("firmware", "%s: %s the flash mapping: %s", e->vars_path,
			  on ? "restoring" : "removing", strerror(-r));
	e->vars_slot = on && r == 0;
}

static int vars_persist(void *opaque, uint64_t offset, uint64_t len)
{
	struct firmware_efi *e = opaque;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = offset & ~(page - 1);
	return msync(e->vars + start, offset + len - start, MS_SYNC) < 0 ? -errno : 0;
}

/* The VM's variable store: its own file in the state directory, copied from the template the
 * first time (written aside, synced, renamed, so a crash leaves either no copy or a whole one). */
static int vars_create(const char *path)
{
	struct firmware_image tmpl;
	int r = firmware_flash_load(FIRMWARE_DEFAULT_OVMF_VARS, FIRMWARE_OVMF_VARS_MAX, &tmpl);
	if (r < 0)
		return r;
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
	} else {
		size_t done = 0;
		while (r == 0 && done < tmpl.size) {
			ssize_t n = write(fd, tmpl.data + done, tmpl.size - done);
			if (n < 0 && errno != EINTR)
				r = -errno;
			else if (n > 0)
				done += n;
		}
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
		close(fd);
		if (r == 0 && rename(tmp, path) < 0)
			r = -errno;
		if (r < 0)
			unlink(tmp);
	}
	firmware_image_free(&tmpl);
	if (r < 0)
		error_set(r, "%s: %s", path, strerror(-r));
	return r;
}

static int vars_open(struct firmware_efi *e, uint64_t room)
{
	const char *dir = vm_state_current();
	if (!dir)
		return error_set(-EINVAL,
				 "--firmware efi: no state directory for the UEFI variables");
	snprintf(e->vars_path, sizeof(e->vars_path), "%s/%s", dir, FIRMWARE_OVMF_VARS_FILE);
	e->vars_fd = open(e->vars_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (e->vars_fd < 0 && errno == ENOENT) {
		int r = vars_create(e->vars_path);
		if (r < 0)
			return r;
		e->vars_fd = open(e->vars_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	}
	struct stat st;
	if (e->vars_fd < 0 || fstat(e->vars_fd, &st) < 0) {
		int r = -errno;
		return error_set(r, "%s: %s", e->vars_path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode) || st.st_size < FIRMWARE_FLASH_UNIT ||
	    st.st_size > (off_t)FIRMWARE_OVMF_VARS_MAX || (uint64_t)st.st_size > room ||
	    st.st_size % FIRMWARE_FLASH_UNIT)
		return error_set(
		    -EINVAL,
		    "%s: not a variable store (a regular file of 4 KiB blocks, at most %llu "
		    "KiB)",
		    e->vars_path, (unsigned long long)FIRMWARE_OVMF_VARS_MAX / 1024);
	e->vars_size = st.st_size;
	void *p = mmap(NULL, e->vars_size, PROT_READ | PROT_WRITE, MAP_SHARED, e->vars_fd, 0);
	if (p == MAP_FAILED) {
		int r = -errno;
		return error_set(r, "%s: %s", e->vars_path, strerror(-r));
	}
	e->vars = p;
	return 0;
}

int firmware_efi_setup(struct vm *vm, struct firmware_efi **out)
{
	struct firmware_efi *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->vm = vm;
	e->vars_fd = -1;
	*out = e; /* firmware_efi_destroy undoes a partial set-up */
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0)
		return error_set(-ENOTSUP,
				 "/dev/kvm: KVM_CAP_READONLY_MEM is missing (needed for OVMF)");
	const char *code =
	    vm->cfg->firmware_file ? vm->cfg->firmware_file : FIRMWARE_DEFAULT_OVMF_CODE;
	int r = firmware_flash_load(code, LAYOUT_FIRMWARE_MAX_SIZE - FIRMWARE_FLASH_UNIT, &e->code);
	if (r < 0 || (r = vars_open(e, LAYOUT_FIRMWARE_MAX_SIZE - e->code.size)) < 0)
		return r;
	uint64_t code_base = firmware_image_base(&e->code);
	e->vars_base = code_base - e->vars_size;
	if ((r = set_slot(vm, EFI_CODE_KVM_SLOT, code_base, e->code.data, e->code.size)) < 0)
		return error_set(r, "KVM_SET_USER_MEMORY_REGION (OVMF code at %#llx): %s",
				 (unsigned long long)code_base, strerror(-r));
	e->code_slot = true;
	if ((r = set_slot(vm, EFI_VARS_KVM_SLOT, e->vars_base, e->vars, e->vars_size)) < 0)
		return error_set(r, "KVM_SET_USER_MEMORY_REGION (UEFI variables at %#llx): %s",
				 (unsigned long long)e->vars_base, strerror(-r));
	e->vars_slot = true;
	const struct pflash_ops ops = {.romd = vars_romd, .persist = vars_persist, .opaque = e};
	r = pflash_create(e->vars, e->vars_size, FIRMWARE_FLASH_UNIT, &ops, &e->flash);
	if (r == 0)
		r = io_bus_register(&vm->mmio, e->vars_base, e->vars_size, pflash_io, e->flash);
	if (r < 0)
		return error_set(r, "%s: flash at %#llx: %s", e->vars_path,
				 (unsigned long long)e->vars_base, strerror(-r));
	e->on_bus = true;
	return 0;
}

void firmware_efi_reset(struct firmware_efi *e)
{
	if (e && e->flash)
		pflash_reset(e->flash);
}

void firmware_efi_destroy(struct vm *vm, struct firmware_efi *e)
{
	if (!e)
		return;
	if (e->on_bus)
		io_bus_unregister(&vm->mmio, e->vars_base, e->flash);
	pflash_destroy(e->flash);
	if (e->vars_slot)
		set_slot(vm, EFI_VARS_KVM_SLOT, e->vars_base, e->vars, 0);
	if (e->code_slot)
		set_slot(vm, EFI_CODE_KVM_SLOT, firmware_image_base(&e->code), e->code.data, 0);
	if (e->vars) {
		msync(e->vars, e->vars_size, MS_SYNC);
		munmap(e->vars, e->vars_size);
	}
	if (e->vars_fd >= 0)
		close(e->vars_fd);
	firmware_image_free(&e->code);
	free(e);
}
