/* Test bench for the AHCI controller, without a CPU: a real PCI bus with fake interrupt wiring, a
 * guest RAM buffer, ABAR accesses through the MMIO bus, command lists built in guest memory, and
 * block completions run by the test thread (fix_complete) or by a helper thread (fix_completer_*)
 * when the controller must wait for them. */
#ifndef MINIVMM_TESTS_AHCI_FIXTURE_H
#define MINIVMM_TESTS_AHCI_FIXTURE_H

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/ahci.h"
#include "devices/ahci_internal.h"
#include "devices/ahci_regs.h"
#include "devices/disk.h"
#include "devices/io_bus.h"
#include "devices/pci.h"
#include "memory/guest_memory.h"
#include "storage/core/block_aio.h"
#include "tests/lib/testdisk.h"

#define FIX_RAM (32 * 1024 * 1024)
#define FIX_DISK_SIZE (8 * 1024 * 1024)
#define FIX_CLB 0x10000ULL   /* command list of port p: FIX_CLB + p * 0x1000 */
#define FIX_FB 0x8000ULL     /* FIS area of port p: FIX_FB + p * 0x100 */
#define FIX_CTBA 0x40000ULL  /* command table of slot s: FIX_CTBA + s * 0x1000 */
#define FIX_DATA 0x100000ULL /* data buffers */
#define FIX_PRD_MAX ((0x1000 - CMDT_PRDT) / PRD_SIZE)

struct fix {
	struct io_bus pio, mmio;
	struct pci_bus *bus;
	struct guest_memory mem;
	struct ahci *hba;
	struct disk *disk[AHCI_MAX_PORTS];
	uint64_t abar;
	unsigned devfn;
	/* interrupt wiring */
	int msi_count;
	bool intx;
	/* the completion helper thread */
	pthread_t completer;
	volatile bool completer_stop;
	/* When set, completions run only while it returns true (e.g. "a reset is waiting"). */
	bool (*completer_gate)(struct fix *f);
	bool completer_running;
	char dir[128];
};

static inline int fix_set_irq(void *opaque, unsigned gsi, bool level)
{
	struct fix *f = opaque;
	(void)gsi;
	f->intx = level;
	return 0;
}

static inline int fix_signal_msi(void *opaque, uint64_t address, uint32_t data)
{
	struct fix *f = opaque;
	(void)address;
	(void)data;
	__atomic_add_fetch(&f->msi_count, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static inline void fix_reset(void *opaque)
{
	(void)opaque;
}

static inline const char *fix_path(struct fix *f, const char *name)
{
	static char buf[4][256];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", f->dir, name);
	return buf[i];
}

/* A raw image of `size` bytes whose byte i is (i * 13 + i / 512) & 0xFF. */
static inline int fix_make_image(const char *path, uint64_t size)
{
	FILE *fp = fopen(path, "w");
	if (!fp)
		return -1;
	for (uint64_t i = 0; i < size; i++)
		fputc((int)((i * 13 + i / 512) & 0xFF), fp);
	return fclose(fp);
}

static inline uint8_t fix_pattern(uint64_t i)
{
	return (uint8_t)((i * 13 + i / 512) & 0xFF);
}

static inline void *fix_ram(struct fix *f, uint64_t gpa, uint64_t len)
{
	return guest_memory_ptr(&f->mem, gpa, len);
}

static inline uint32_t fix_r(struct fix *f, uint64_t off)
{
	uint8_t d[4];
	if (!io_bus_access(&f->mmio, f->abar + off, d, 4, false))
		return 0xDEADBEEF;
	return d[0] | d[1] << 8 | d[2] << 16 | (uint32_t)d[3] << 24;
}

static inline void fix_w(struct fix *f, uint64_t off, uint32_t v)
{
	uint8_t d[4] = {v, v >> 8, v >> 16, v >> 24};
	io_bus_access(&f->mmio, f->abar + off, d, 4, true);
}

static inline uint64_t fix_port(unsigned p, unsigned reg)
{
	return AHCI_PORT_BASE + (uint64_t)p * AHCI_PORT_SIZE + reg;
}

static inline uint32_t fix_pr(struct fix *f, unsigned p, unsigned reg)
{
	return fix_r(f, fix_port(p, reg));
}

static inline void fix_pw(struct fix *f, unsigned p, unsigned reg, uint32_t v)
{
	fix_w(f, fix_port(p, reg), v);
}

/* Build a controller with `nports` ports; disks are attached by fix_attach. */
static inline int fix_init(struct fix *f, unsigned nports)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/var/tmp/minivmm-test-ahci-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (io_bus_init(&f->pio) || io_bus_init(&f->mmio))
		return -1;
	struct pci_bus_ops ops = {
	    .set_irq = fix_set_irq, .signal_msi = fix_signal_msi, .reset = fix_reset, .opaque = f};
	if (pci_bus_create(&f->pio, &f->mmio, &ops, &f->bus) < 0)
		return -1;
	if (guest_memory_create(&f->mem, FIX_RAM) < 0)
		return -1;
	if (ahci_create(f->bus, 5, &f->mem, nports, &f->hba) < 0)
		return -1;
	f->devfn = 5 << 3;
	/* Memory decoding and bus mastering on; the bus assigned BAR5. */
	pci_config_write(f->bus, f->devfn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	f->abar = pci_config_read(f->bus, f->devfn, PCI_BAR0 + 5 * 4, 4) & ~0xFULL;
	return 0;
}

static inline int fix_attach(struct fix *f, unsigned port, const char *opts, enum disk_media media)
{
	char name[32], arg[512];
	snprintf(name, sizeof(name), "disk%u.img", port);
	if (fix_make_image(fix_path(f, name), FIX_DISK_SIZE) < 0)
		return -1;
	snprintf(arg, sizeof(arg), "%s%s", fix_path(f, name), opts ? opts : "");
	f->disk[port] = test_disk_open(arg, media);
	if (!f->disk[port])
		return -1;
	return ahci_attach(f->hba, port, f->disk[port]);
}

/* Run every block completion of port's disk until none is pending. */
static inline void fix_complete(struct fix *f, unsigned port)
{
	struct block_aio_ctx *aio = f->disk[port]->aio;
	for (int i = 0; i < 100000 && block_aio_pending(aio); i++)
		block_aio_poll(aio, 1000);
}

static inline void *fix_completer_main(void *arg)
{
	struct fix *f = arg;
	while (!f->completer_stop) {
		if (f->completer_gate && !f->completer_gate(f)) {
			sched_yield();
			continue;
		}
		for (unsigned i = 0; i < AHCI_MAX_PORTS; i++)
			if (f->disk[i] && f->disk[i]->aio)
				block_aio_poll(f->disk[i]->aio, 1);
	}
	return NULL;
}

static inline void fix_completer_start(struct fix *f)
{
	f->completer_stop = false;
	f->completer_running = pthread_create(&f->completer, NULL, fix_completer_main, f) == 0;
}

static inline void fix_completer_stop(struct fix *f)
{
	if (!f->completer_running)
		return;
	f->completer_stop = true;
	pthread_join(f->completer, NULL);
	f->completer_running = false;
	f->completer_gate = NULL;
}

static inline void fix_fini(struct fix *f)
{
	fix_completer_stop(f);
	for (unsigned i = 0; i < AHCI_MAX_PORTS; i++)
		if (f->disk[i] && f->disk[i]->aio)
			fix_complete(f, i);
	ahci_destroy(f->hba);
	for (unsigned i = 0; i < AHCI_MAX_PORTS; i++)
		if (f->disk[i])
			disk_close(f->disk[i]);
	pci_bus_destroy(f->bus);
	guest_memory_destroy(&f->mem);
	io_bus_destroy(&f->pio);
	io_bus_destroy(&f->mmio);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
}

/* Start port p the way Linux does: list and FIS area, clear errors, FRE, then ST; interrupts on. */
static inline void fix_port_start(struct fix *f, unsigned p)
{
	fix_w(f, AHCI_GHC, AHCI_GHC_AE | AHCI_GHC_IE);
	fix_pw(f, p, PORT_CLB, (uint32_t)(FIX_CLB + p * 0x1000));
	fix_pw(f, p, PORT_CLBU, 0);
	fix_pw(f, p, PORT_FB, (uint32_t)(FIX_FB + p * 0x100));
	fix_pw(f, p, PORT_FBU, 0);
	fix_pw(f, p, PORT_SERR, 0xFFFFFFFF);
	fix_pw(f, p, PORT_IS, 0xFFFFFFFF);
	fix_pw(f, p, PORT_IE, PORT_IS_VALID);
	fix_pw(f, p, PORT_CMD, PORT_CMD_FRE);
	fix_pw(f, p, PORT_CMD, PORT_CMD_FRE | PORT_CMD_ST);
}

struct fix_prd {
	uint64_t addr;
	uint32_t len; /* bytes, 1..4 MiB */
};

/* Write slot s's command header, H2D FIS (+ ATAPI packet) and PRDT for port p. */
static inline void fix_cmd(struct fix *f, unsigned p, unsigned s, const uint8_t fis[20],
			   const uint8_t *acmd, bool write, const struct fix_prd *prd,
			   unsigned nprd)
{
	uint64_t ctba = FIX_CTBA + (uint64_t)s * 0x1000 + (uint64_t)p * 0x20000;
	uint8_t *hdr = fix_ram(f, FIX_CLB + p * 0x1000 + s * CMDH_SIZE, CMDH_SIZE);
	uint8_t *tbl = fix_ram(f, ctba, 0x1000);
	uint32_t dw0 = 5 | (acmd ? CMDH_ATAPI : 0) | (write ? CMDH_WRITE : 0) | nprd << 16;
	memset(hdr, 0, CMDH_SIZE);
	memset(tbl, 0, CMDT_PRDT);
	hdr[0] = dw0;
	hdr[1] = dw0 >> 8;
	hdr[2] = dw0 >> 16;
	hdr[3] = dw0 >> 24;
	for (int i = 0; i < 4; i++)
		hdr[8 + i] = (uint8_t)(ctba >> (8 * i));
	memcpy(tbl + CMDT_CFIS, fis, 20);
	if (acmd)
		memcpy(tbl + CMDT_ACMD, acmd, 16);
	for (unsigned i = 0; i < nprd && i < FIX_PRD_MAX; i++) {
		uint8_t *e = tbl + CMDT_PRDT + i * PRD_SIZE;
		memset(e, 0, PRD_SIZE);
		for (int k = 0; k < 8; k++)
			e[k] = (uint8_t)(prd[i].addr >> (8 * k));
		uint32_t dbc = prd[i].len - 1;
		for (int k = 0; k < 4; k++)
			e[12 + k] = (uint8_t)(dbc >> (8 * k));
	}
}

static inline uint32_t fix_prdbc(struct fix *f, unsigned p, unsigned s)
{
	uint8_t *hdr = fix_ram(f, FIX_CLB + p * 0x1000 + s * CMDH_SIZE, CMDH_SIZE);
	return hdr[4] | hdr[5] << 8 | hdr[6] << 16 | (uint32_t)hdr[7] << 24;
}

/* An H2D register FIS for `cmd` with LBA48 fields. */
static inline void fix_fis(uint8_t fis[20], uint8_t cmd, uint64_t lba, uint16_t count,
			   uint16_t feature)
{
	memset(fis, 0, 20);
	fis[0] = FIS_TYPE_REG_H2D;
	fis[1] = FIS_H2D_C;
	fis[2] = cmd;
	fis[3] = (uint8_t)feature;
	fis[4] = (uint8_t)lba;
	fis[5] = (uint8_t)(lba >> 8);
	fis[6] = (uint8_t)(lba >> 16);
	fis[7] = 0x40;
	fis[8] = (uint8_t)(lba >> 24);
	fis[9] = (uint8_t)(lba >> 32);
	fis[10] = (uint8_t)(lba >> 40);
	fis[11] = (uint8_t)(feature >> 8);
	fis[12] = (uint8_t)count;
	fis[13] = (uint8_t)(count >> 8);
}

/* An NCQ FIS: count in FEATURES, tag in COUNT bits 7:3. */
static inline void fix_ncq_fis(uint8_t fis[20], bool write, unsigned tag, uint64_t lba,
			       uint16_t count)
{
	fix_fis(fis, write ? ATA_CMD_WRITE_FPDMA_QUEUED : ATA_CMD_READ_FPDMA_QUEUED, lba,
		(uint16_t)(tag << 3), count);
}

/* Issue slot s and run completions until its CI bit clears (or nothing more can happen). */
static inline uint32_t fix_issue_wait(struct fix *f, unsigned p, unsigned s)
{
	fix_pw(f, p, PORT_CI, 1u << s);
	fix_complete(f, p);
	return fix_pr(f, p, PORT_CI);
}

/* cmocka fixtures: an HBA of `ports` ports with a hard disk on port 0 (`opts`: extra --disk options
 * such as ",cache=unsafe", or NULL), its port started when `start`. */
static inline int fix_state_new(void **state, unsigned ports, const char *opts, bool start)
{
	struct fix *f = calloc(1, sizeof(*f));
	if (!f || fix_init(f, ports) < 0 || fix_attach(f, 0, opts, DISK_MEDIA_HDD) < 0) {
		free(f);
		return -1;
	}
	if (start)
		fix_port_start(f, 0);
	*state = f;
	return 0;
}

static inline int fix_state_free(void **state)
{
	fix_fini(*state);
	free(*state);
	return 0;
}

/* A port stop or reset of port 0 is waiting for its requests in flight. */
static inline bool fix_reset_waiting(struct fix *f)
{
	pthread_mutex_lock(&f->hba->lock);
	bool waiting = f->hba->ports[0].quiescing > 0;
	pthread_mutex_unlock(&f->hba->lock);
	return waiting;
}

#endif
