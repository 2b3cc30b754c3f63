/* A virtual disk as every storage controller sees it (IDE, AHCI, SCSI, NVMe): the opened block
 * device chain, its asynchronous I/O context, the attachment options and the identity a controller
 * reports (geometry, serial number, model, firmware, UUID).
 *
 * Controllers never open files: they get a struct disk from disk_open() and submit block_aio
 * requests on disk->aio (whose completions the VM's I/O thread runs, see disk_io_thread_*).
 *
 * Command line (parsed by disk_config_parse, one --disk or --cdrom argument):
 *   --disk
 * FILE[,MODE][,bus=ide|sata|scsi|sas|nvme|virtio][,format=FMT][,cache=writeback|none|directsync|unsafe]
 *   [,controller=nvmeN] (bus=nvme: the controller whose namespace the disk becomes; default nvme0)
 *   --cdrom ISO[,bus=ide|sata|scsi]
 * MODE: normal, immutable, writethrough, shareable, multiattach, readonly: devices/disk_mode.h
 * opens the image (locks, differencing images); a controller only sees d->read_only (readonly).
 */
#ifndef MINIVMM_DEVICES_DISK_H
#define MINIVMM_DEVICES_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/disk_mode.h"

struct block_device;
struct block_aio_ctx;

enum disk_bus {
	DISK_BUS_SATA = 0,
	DISK_BUS_IDE,
	DISK_BUS_SCSI,
	DISK_BUS_NVME,
	DISK_BUS_VIRTIO,
	DISK_BUS_SAS,
};
#define DISK_BUS_LAST DISK_BUS_SAS
enum disk_cache {
	DISK_CACHE_WRITEBACK = 0, /* page cache, guest flushes honoured */
	DISK_CACHE_NONE,	  /* O_DIRECT */
	DISK_CACHE_DIRECTSYNC,	  /* O_DIRECT | O_DSYNC */
	DISK_CACHE_UNSAFE,	  /* page cache, guest flushes ignored */
};
enum disk_media { DISK_MEDIA_HDD = 0, DISK_MEDIA_CDROM };
/* What a failed write (ENOSPC, EIO) does: the guest gets the device's error status, or the VM
 * pauses until `control NAME resume` retries it (storage/core/block_aio.h: stop on error). */
enum disk_werror { DISK_WERROR_REPORT = 0, DISK_WERROR_STOP };

struct disk_config {
	char *path;   /* malloc'ed */
	char *format; /* malloc'ed, NULL: probe */
	enum disk_bus bus;
	enum disk_mode mode;
	enum disk_cache cache;
	enum disk_media media;
	unsigned controller; /* bus=nvme: controller=nvmeN (default 0) */
	bool controller_given;
	enum disk_werror werror;
};

/* Parse one --disk (media HDD) or --cdrom (media CDROM) argument. On error returns -EINVAL with a
 * one-line message naming the argument and the problem. */
int disk_config_parse(const char *arg, enum disk_media media, struct disk_config *out);
void disk_config_free(struct disk_config *cfg);
const char *disk_bus_name(enum disk_bus bus);
const char *disk_cache_name(enum disk_cache cache);

struct disk {
	char *path;		   /* NULL: CD-ROM drive without a medium */
	struct block_device *bs;   /* NULL without a medium */
	struct block_aio_ctx *aio; /* NULL without a medium */
	enum disk_media media;
	enum disk_mode mode;
	enum disk_cache cache;
	enum disk_bus bus;
	bool read_only;	    /* the guest cannot write (readonly mode, CD-ROM) */
	bool flush_ignored; /* cache=unsafe */
	uint64_t size;	    /* bytes */
	uint64_t sectors;   /* 512-byte sectors (size rounded down) */
	uint16_t cylinders, heads, sectors_per_track; /* CHS for IDENTIFY words 1, 3, 6 */
	char serial[21];			      /* ASCII, NUL-terminated */
	char model[41];
	char firmware[9];
	uint8_t uuid[16];
	unsigned index; /* attachment order, used for the serial number */
	/* Where firmware finds the drive, as its boot order names it (OpenFirmware-style path, as
	 * QEMU's "bootorder" fw_cfg file): set by the controller that attached it, "" until then.
	 */
	char fw_path[80];
	unsigned controller; /* from disk_config: which controller of its bus (bus=nvme) */
	enum disk_werror werror;
};

/* Open the image of cfg (CD-ROM: read-only; path may be NULL for an empty drive) with its aio
 * context. `index` makes the serial number unique within the VM. The UUID is the image's own
 * (VDI, VHD, VHDX, VMDK with ddb.uuid.image; a malformed one fails the open), else the one the
 * VM's state keeps for the file (disk_mode_uuid: STATE/uuids.json, vmm/vm_uuid.h), else, with no
 * state (CD-ROM media, tests), one hashed from the real path. */
int disk_open(const struct disk_config *cfg, unsigned index, struct disk **out);
/* Like VirtualBox, one VM never sees two hard disks with the same UUID (guests identify disks by
 * it, and two attachments of one image would corrupt it): -EEXIST when the last of `disks` has
 * the UUID of an earlier one, with a message naming both files. */
int disk_check_uuid(struct disk *const *disks, unsigned n);
/* Waits for the requests in flight (their callbacks run), then frees everything. */
void disk_close(struct disk *d);
/* werror=stop: complete the failed writes waiting for a resume with their error (before a wait
 * for requests in flight: a reset or the end must not wait for a resume that may never come). */
void disk_release_stopped(struct disk *d);

/* CD-ROM media change in three steps, so that the swap itself can run under the controller's lock
 * while opening and draining (which may block and run callbacks) run outside it:
 *   disk_medium_open (path NULL: no medium) -> disk_medium_swap (m receives the old medium)
 *   -> disk_medium_close (waits for the old medium's requests, whose callbacks then run). */
struct disk_medium {
	char *path;
	struct block_device *bs;
	struct block_aio_ctx *aio;
	uint64_t size;
};
int disk_medium_open(const char *path, struct disk_medium *m);
void disk_medium_swap(struct disk *d, struct disk_medium *m);
void disk_medium_close(struct disk_medium *m);

/* VM snapshot of a running VM: open `layer` (format NULL: qcow2; a new differencing image over d's
 * current top, same size) as a medium for hard disk d, with d's cache mode, write-locked. The
 * caller swaps it in with disk_medium_swap while no request is in flight (devices/storage.h). */
int disk_layer_open(const struct disk *d, const char *layer, const char *format,
		    struct disk_medium *m);

/* Fill `dst` (len bytes) with `src` padded with spaces and without NUL (ATA/SCSI strings). */
void disk_pad_string(char *dst, size_t len, const char *src);

#endif
