/* ACPI fixed hardware (ACPI 6.4 section 4.8): PM1a event block (status, enable), PM1a control,
 * the PM timer and the GPE0 block, at the ports of memory/layout.h.
 *
 * Registers are modelled byte by byte, so any 1, 2 or 4-byte access inside one block works the way
 * a byte-lane decoder would; status bits are write-1-to-clear.  There is no SMI handler, so the
 * machine is always in ACPI mode: SCI_EN reads 1 and cannot be cleared.
 *
 * The PM timer is 24 bits at 3.579545 MHz since acpi_pm_create(), from CLOCK_MONOTONIC.  TMR_STS
 * is computed when read (bit 23 changed since the last clear); the timer raises no SCI by itself
 * (Linux never sets TMR_EN).
 */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/acpi_pm.h"
#include "devices/device.h"
#include "devices/io_bus.h"
#include "memory/layout.h"
#include "lib/error.h"

#define PM_TMR_HZ 3579545ULL
#define PM_TMR_MASK 0xFFFFFFu

/* Offsets from LAYOUT_PORT_ACPI_PM */
#define PM1_STS 0
#define PM1_EN 2
#define PM1_CNT 4
#define PM_TMR 8
#define PM_LEN 12

/* PM1 status and enable bits */
#define TMR_STS (1u << 0)
#define PWRBTN_STS (1u << 8)
#define WAK_STS (1u << 15)
#define PM1_STS_MASK                                                                               \
	(TMR_STS | (1u << 4) | (1u << 5) | PWRBTN_STS | (1u << 9) | (1u << 10) | (1u << 14) |      \
	 WAK_STS)
#define PM1_EN_MASK (TMR_STS | (1u << 5) | PWRBTN_STS | (1u << 9) | (1u << 10) | (1u << 14))
/* PM1 control bits */
#define SCI_EN (1u << 0)
#define SLP_TYP_SHIFT 10
#define SLP_TYP_MASK (7u << SLP_TYP_SHIFT)
#define SLP_EN (1u << 13)
/* Stored bits: SCI_EN, BM_RLD, SLP_TYP.  GBL_RLS (bit 2) and SLP_EN are write-only and read 0. */
#define PM1_CNT_MASK (SCI_EN | (1u << 1) | SLP_TYP_MASK)

#define GPE_BYTES (LAYOUT_PORT_ACPI_GPE0_LEN / 2)

struct acpi_pm {
	struct acpi_pm_ops ops;
	pthread_mutex_t lock;
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint8_t gpe_sts[GPE_BYTES], gpe_en[GPE_BYTES];
	uint64_t start_ns;
	uint64_t tmr_half_seen; /* ticks >> 23 when TMR_STS was last cleared */
	bool sci;
	const struct device_env *env; /* as the machine's PM block */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Ticks since creation, not wrapped. */
static uint64_t pm_ticks(const struct acpi_pm *pm)
{
	uint64_t ns = now_ns() - pm->start_ns;
	/* Split so the product cannot overflow for any uptime. */
	return ns / 1000000000ULL * PM_TMR_HZ + ns % 1000000000ULL * PM_TMR_HZ / 1000000000ULL;
}

static uint32_t pm_timer(const struct acpi_pm *pm)
{
	return (uint32_t)(pm_ticks(pm) & PM_TMR_MASK);
}

/* TMR_STS is set each time bit 23 changes: compare how many half-periods have passed. */
static uint16_t pm1_status(struct acpi_pm *pm)
{
	if ((pm_ticks(pm) >> 23) != pm->tmr_half_seen)
		pm->pm1_sts |= TMR_STS;
	return pm->pm1_sts;
}

/* Recompute the SCI level and tell the VM when it changes (called with the lock held). */
static void pm_update_sci(struct acpi_pm *pm)
{
	bool level = (pm->pm1_sts & pm->pm1_en) != 0;
	for (unsigned i = 0; i < GPE_BYTES; i++)
		level |= (pm->gpe_sts[i] & pm->gpe_en[i]) != 0;
	if (level != pm->sci) {
		pm->sci = level;
		if (pm->ops.set_sci)
			pm->ops.set_sci(pm->ops.opaque, level);
	}
}

int acpi_pm_create(const struct acpi_pm_ops *ops, struct acpi_pm **out)
{
	struct acpi_pm *pm;

	if (!ops || !out)
		return -EINVAL;
	pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	int err = pthread_mutex_init(&pm->lock, NULL);
	if (err) {
		free(pm);
		return -err;
	}
	pm->ops = *ops;
	pm->pm1_cnt = SCI_EN;
	pm->start_ns = now_ns();
	*out = pm;
	return 0;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

/* One byte of the PM block at offset `off` (0..PM_LEN), or -1 if nothing is there. */
static int pm_read_byte(struct acpi_pm *pm, unsigned off, uint32_t tmr)
{
	unsigned sh = 8 * (off & 1);
	switch (off & ~1u) {
	case PM1_STS:
		return (pm1_status(pm) >> sh) & 0xFF;
	case PM1_EN:
		return (pm->pm1_en >> sh) & 0xFF;
	case PM1_CNT:
		return (pm->pm1_cnt >> sh) & 0xFF; /* SLP_EN is write-only: never stored */
	case PM_TMR:
	case PM_TMR + 2:
		return (tmr >> (8 * (off - PM_TMR))) & 0xFF;
	}
	return -1;
}

/* Write one byte; returns true if it was SLP_EN set in PM1_CNT. */
static bool pm_write_byte(struct acpi_pm *pm, unsigned off, uint8_t v)
{
	unsigned sh = 8 * (off & 1);
	uint16_t bits = (uint16_t)(v << sh);
	switch (off & ~1u) {
	case PM1_STS:
		bits &= PM1_STS_MASK;
		if (bits & TMR_STS)
			pm->tmr_half_seen = pm_ticks(pm) >> 23;
		pm->pm1_sts &= ~bits;
		return false;
	case PM1_EN:
		pm->pm1_en = (pm->pm1_en & ~(0xFF << sh)) | (bits & PM1_EN_MASK);
		return false;
	case PM1_CNT:
		pm->pm1_cnt = (pm->pm1_cnt & ~(0xFF << sh)) | (bits & PM1_CNT_MASK) | SCI_EN;
		return (bits & SLP_EN) != 0;
	}
	return false; /* the timer is read-only */
}

static bool pm_block_ok(unsigned off, unsigned len)
{
	if (off >= PM_LEN || len > PM_LEN - off)
		return false;
	for (unsigned i = off; i < off + len; i++)
		if (i == PM1_CNT + 2 || i == PM1_CNT + 3)
			return false; /* hole after PM1_CNT */
	return true;
}

void acpi_pm_io(struct acpi_pm *pm, uint16_t port, uint8_t *data, unsigned len, bool is_write)
{
	unsigned sleep_typ = 0;
	bool sleep = false;
	unsigned gpe_off = (unsigned)port - LAYOUT_PORT_ACPI_GPE0;
	bool in_pm = port >= LAYOUT_PORT_ACPI_PM && pm_block_ok(port - LAYOUT_PORT_ACPI_PM, len);
	bool in_gpe = port >= LAYOUT_PORT_ACPI_GPE0 && gpe_off < LAYOUT_PORT_ACPI_GPE0_LEN &&
		      len <= LAYOUT_PORT_ACPI_GPE0_LEN - gpe_off;

	if (!pm || !data)
		return;
	if ((len != 1 && len != 2 && len != 4) || (!in_pm && !in_gpe)) {
		if (!is_write)
			memset(data, 0xFF, len);
		return;
	}
	pthread_mutex_lock(&pm->lock);
	if (in_pm) {
		unsigned off = port - LAYOUT_PORT_ACPI_PM;
		uint32_t tmr = pm_timer(pm);
		for (unsigned i = 0; i < len; i++) {
			if (!is_write) {
				int b = pm_read_byte(pm, off + i, tmr);
				data[i] = b < 0 ? 0xFF : (uint8_t)b;
			} else if (pm_write_byte(pm, off + i, data[i])) {
				sleep = true;
			}
		}
		if (sleep)
			sleep_typ = (pm->pm1_cnt & SLP_TYP_MASK) >> SLP_TYP_SHIFT;
	} else {
		for (unsigned i = 0; i < len; i++) {
			unsigned r = gpe_off + i;
			uint8_t *reg = r < GPE_BYTES ? &pm->gpe_sts[r] : &pm->gpe_en[r - GPE_BYTES];
			if (!is_write)
				data[i] = *reg;
			else if (r < GPE_BYTES)
				*reg &= ~data[i]; /* status: write 1 to clear */
			else
				*reg = data[i];
		}
	}
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	/* Outside the lock: powering off may tear down the VM, which may touch this device. */
	if (sleep && pm->ops.sleep)
		pm->ops.sleep(pm->ops.opaque, sleep_typ);
}

void acpi_pm_raise_gpe(struct acpi_pm *pm, unsigned bit)
{
	if (!pm || bit >= 8 * GPE_BYTES)
		return;
	pthread_mutex_lock(&pm->lock);
	pm->gpe_sts[bit / 8] |= (uint8_t)(1u << (bit % 8));
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_press_power_button(struct acpi_pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts |= PWRBTN_STS;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_reset(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts = 0;
	pm->pm1_en = 0;
	pm->pm1_cnt = SCI_EN;
	memset(pm->gpe_sts, 0, sizeof(pm->gpe_sts));
	memset(pm->gpe_en, 0, sizeof(pm->gpe_en));
	pm->start_ns = now_ns();
	pm->tmr_half_seen = 0;
	pm_update_sci(pm); /* lowers the SCI if it was up */
	pthread_mutex_unlock(&pm->lock);
}

/* ---- the machine's PM block: ports, SCI on IRQ 9, S5 powers the VM off ---- */

static void pm_sci(void *opaque, bool level)
{
	const struct device_env *env = opaque;
	env->irq->set_irq(env->opaque, LAYOUT_IRQ_SCI, level);
}

static void pm_sleep(void *opaque, unsigned slp_typ)
{
	const struct device_env *env = opaque;
	if (slp_typ == ACPI_PM_SLP_TYP_S5)
		env->request(env->opaque, DEVICE_REQUEST_POWEROFF);
}

static void pm_port_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	acpi_pm_io(opaque, LAYOUT_PORT_ACPI_PM + offset, data, len, is_write);
}

static void gpe_port_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	acpi_pm_io(opaque, LAYOUT_PORT_ACPI_GPE0 + offset, data, len, is_write);
}

static int pm_device_create(struct device_env *env, void **state)
{
	struct acpi_pm_ops ops = {.set_sci = pm_sci, .sleep = pm_sleep, .opaque = env};
	struct acpi_pm *pm;
	int r = acpi_pm_create(&ops, &pm);
	if (r < 0)
		return r;
	pm->env = env;
	r = io_bus_register(env->pio, LAYOUT_PORT_ACPI_PM, 12, pm_port_io, pm);
	if (r == 0) {
		r = io_bus_register(env->pio, LAYOUT_PORT_ACPI_GPE0, LAYOUT_PORT_ACPI_GPE0_LEN,
				    gpe_port_io, pm);
		if (r < 0)
			io_bus_unregister(env->pio, LAYOUT_PORT_ACPI_PM, pm);
	}
	if (r < 0) {
		error_set(r, "ACPI PM: ports 0x%x/0x%x: %s", LAYOUT_PORT_ACPI_PM,
			  LAYOUT_PORT_ACPI_GPE0, strerror(-r));
		acpi_pm_destroy(pm);
		return r;
	}
	*state = pm;
	return 0;
}

static void pm_device_reset(void *state)
{
	acpi_pm_reset(state);
}

static void pm_device_destroy(void *state)
{
	struct acpi_pm *pm = state;
	io_bus_unregister(pm->env->pio, LAYOUT_PORT_ACPI_PM, pm);
	io_bus_unregister(pm->env->pio, LAYOUT_PORT_ACPI_GPE0, pm);
	acpi_pm_destroy(pm);
}

static const struct device_ops pm_device = {
    .name = "acpi-pm",
    .create = pm_device_create,
    .reset = pm_device_reset,
    .destroy = pm_device_destroy,
};
DEVICE(pm_device, DEVICE_LEVEL_PLATFORM);
