/* The VM's disks and their controllers.
 *
 * storage_create() opens every --disk/--cdrom (struct disk), hands each group of the same bus to
 * the controller registered for that bus (STORAGE_CONTROLLER below: IDE here, AHCI, SCSI and NVMe
 * in their own files) and starts the VM's I/O thread, which polls every disk's aio eventfd and
 * runs the completions (block_aio_complete) that controllers then handle under their own locks.
 *
 * storage_destroy() runs with the vCPUs stopped: it stops the I/O thread, drains every disk (the
 * last callbacks run against live controllers), destroys the controllers, then closes the disks.
 */
#ifndef MINIVMM_DEVICES_STORAGE_H
#define MINIVMM_DEVICES_STORAGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "devices/disk.h"

struct pci_bus;
struct io_bus;
struct guest_memory;
struct control_server;
struct event_loop;

/* What a controller may use of the machine. */
struct storage_env {
	struct pci_bus *pci;
	struct io_bus *pio;
	const struct guest_memory *mem;
	/* Drive an interrupt line (ISA IRQ / GSI); edge-triggered lines are raised and lowered. */
	int (*set_irq)(void *opaque, unsigned gsi, bool level);
	void *irq_opaque;
	struct control_server *control; /* may be NULL: no control verbs */
	/* Set by storage_create for the controllers: held (before the controller's own lock) while
	 * a disk's medium is swapped, so the I/O thread never completes on a closed context. */
	pthread_mutex_t *media_lock;
	/* virtio (issue 12): the VM's event loop for doorbell eventfds (NULL: doorbells are MMIO
	 * exits) and the vCPU count (one virtio-blk queue per vCPU). */
	struct event_loop *loop;
	unsigned ncpus;
};

struct storage_controller {
	enum disk_bus bus;
	const char *name; /* for messages: "IDE (PIIX4)" */
	/* Pure check of the attachment (positions, counts) before anything is opened. */
	int (*check)(const struct disk_config *cfgs, unsigned n, char *err, size_t errlen);
	/* Attach `n` opened disks (in command-line order); *state is the controller's. */
	int (*create)(const struct storage_env *env, struct disk **disks, unsigned n, void **state,
		      char *err, size_t errlen);
	void (*destroy)(void *state);
	/* Swap the medium of CD-ROM `d` with *m (which receives the old one), under the
	 * controller's lock; -EBUSY when a request on the medium is in flight, -EPERM while the
	 * guest locks the tray (PREVENT MEDIUM REMOVAL) unless force. May be NULL. */
	int (*change_medium)(void *state, struct disk *d, struct disk_medium *m, bool force,
			     char *err, size_t errlen);
};

void storage_controller_register(const struct storage_controller *c);
#define STORAGE_CONTROLLER(var)                                                                    \
	static void __attribute__((constructor)) var##_register(void)                              \
	{                                                                                          \
		storage_controller_register(&(var));                                               \
	}

/* Every configuration can be attached: its bus has a controller, which accepts the group. */
int storage_check(const struct disk_config *cfgs, unsigned n, char *err, size_t errlen);

struct storage;
int storage_create(const struct storage_env *env, const struct disk_config *cfgs, unsigned n,
		   struct storage **out, char *err, size_t errlen);
void storage_destroy(struct storage *s);

/* Media change (the control verbs cdrom-eject and cdrom-insert call this): `index` counts the
 * CD-ROM drives from 0 in command-line order; path NULL ejects. */
int storage_change_medium(struct storage *s, unsigned index, const char *path, bool force,
			  char *err, size_t errlen);
/* Disk `index` in command-line order (--disk and --cdrom together), NULL past the end. */
struct disk *storage_disk(struct storage *s, unsigned index);

/* VM snapshot of a paused VM (vmm/vm_snapshot.h), in two steps with the vCPUs paused:
 * storage_quiesce waits for every request in flight (-EBUSY if they do not end within a minute)
 * and flushes every writable disk; storage_switch_layers then makes each hard disk i with
 * layers[i] set write layers[i] (in formats[i]), a new differencing image over its current top
 * (which stays read-locked, in the new chain). All or nothing: on failure every disk keeps its
 * chain. */
int storage_quiesce(struct storage *s, char *err, size_t errlen);
int storage_switch_layers(struct storage *s, const char *const *layers, const char *const *formats,
			  unsigned n, char *err, size_t errlen);

/* Register cdrom-eject and cdrom-insert on the VM's control socket (storage_control.c). */
int storage_register_verbs(struct storage *s, struct control_server *srv, char *err, size_t errlen);

#endif
