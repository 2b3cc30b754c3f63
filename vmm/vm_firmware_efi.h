/* UEFI boot (--firmware efi) wired into the VM: OVMF's code as read-only flash ending at 4 GiB,
 * and right below it the VM's own copy of the variable store (FIRMWARE_OVMF_VARS_FILE in the
 * state directory, made from Debian's template on first use) as CFI flash (devices/pflash.h):
 * mapped read-only while in read-array mode, writes and commands through pflash_io, what OVMF
 * programs and erases saved to the file (msync) before it reads the flash again. */
#ifndef MINIVMM_VMM_VM_FIRMWARE_EFI_H
#define MINIVMM_VMM_VM_FIRMWARE_EFI_H

#include <stddef.h>

struct vm;
struct firmware_efi;

/* The flash images mapped, the variable store on the MMIO bus.  -errno with a message naming the
 * file. */
int firmware_efi_setup(struct vm *vm, struct firmware_efi **out);
/* Power on: the variable store back to read-array mode (what was written stays). */
void firmware_efi_reset(struct firmware_efi *e);
/* vCPUs stopped. */
void firmware_efi_destroy(struct vm *vm, struct firmware_efi *e);

#endif
