/* VM snapshot of a paused VM at the storage level, without a CPU: the VM's storage (IDE controller,
 * I/O thread) runs with four disks (normal qcow2, normal raw, writethrough qcow2, normal VDI);
 * requests are
 * submitted on each disk's aio context as a controller does; storage_quiesce +
 * vm_snapshot_take_live switch the normal disks to new layers while the writethrough disk stays.
 * What each file then holds is checked after "power off", and restore brings the snapshot back. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/io_bus.h"
#include "devices/pci.h"
#include "devices/storage.h"
#include "memory/guest_memory.h"
#include "storage/core/block.h"
#include "storage/core/block_aio.h"
#include "storage/core/disk_lock.h"
#include "vmm/vm_config.h"
#include "vmm/vm_snapshot.h"
#include "vmm/vm_state.h"
#include "tests/lib/testlib.h"
#include "lib/error.h"

#define NDISKS 4

static char state[300];

struct machine {
	struct io_bus pio, mmio;
	struct pci_bus *bus;
	struct guest_memory mem;
	struct vm_config cfg;
	struct storage *st;
};

static int no_irq(void *opaque, unsigned gsi, bool level)
{
	(void)opaque, (void)gsi, (void)level;
	return 0;
}

static int no_msi(void *opaque, uint64_t address, uint32_t data)
{
	(void)opaque, (void)address, (void)data;
	return 0;
}

static int setup(void **st)
{
	(void)st;
	if (test_tmpdir_setup("test-storage-snap") < 0)
		return -1;
	snprintf(state, sizeof(state), "%s/state", test_tmpdir);
	return test_run(
	    "cd '%s' && qemu-img create -q -f qcow2 n.qcow2 16M && truncate -s 16M r.raw "
	    "&& qemu-img create -q -f qcow2 wt.qcow2 16M && qemu-img create -q -f vdi v.vdi 16M",
	    test_tmpdir);
}

static int teardown(void **st)
{
	(void)st;
	return getenv("KEEP") ? 0 : test_tmpdir_teardown(NULL);
}

/* Start the VM's storage as `minivmm run` does (state directory, disk modes, controller). */
static void machine_start(struct machine *m)
{
	char a[NDISKS][400];
	memset(m, 0, sizeof(*m));
	snprintf(a[0], sizeof(a[0]), "%s/n.qcow2,bus=ide", test_tmpdir);
	snprintf(a[1], sizeof(a[1]), "%s/r.raw,bus=ide", test_tmpdir);
	snprintf(a[2], sizeof(a[2]), "%s/wt.qcow2,writethrough,bus=ide", test_tmpdir);
	snprintf(a[3], sizeof(a[3]), "%s/v.vdi,bus=ide", test_tmpdir);
	const char *argv[] = {"run",	"--name", "livesnap", "--kernel",    "k",
			      "--disk", a[0],	  "--disk",   a[1],	     "--disk",
			      a[2],	"--disk", a[3],	      "--state-dir", state};
	assert_int_equal(vm_config_parse(15, (char **)argv, 1 << 20, &m->cfg), 0);
	assert_int_equal(io_bus_init(&m->pio), 0);
	assert_int_equal(io_bus_init(&m->mmio), 0);
	struct pci_bus_ops ops = {.set_irq = no_irq, .signal_msi = no_msi, .opaque = m};
	assert_int_equal(pci_bus_create(&m->pio, &m->mmio, &ops, &m->bus), 0);
	assert_int_equal(guest_memory_create(&m->mem, 16 << 20), 0);
	if (vm_state_prepare(&m->cfg))
		fail_msg("%s", error_msg());
	struct storage_env env = {
	    .pci = m->bus, .pio = &m->pio, .mem = &m->mem, .set_irq = no_irq, .irq_opaque = m};
	if (storage_create(&env, m->cfg.disks, m->cfg.ndisks, &m->st))
		fail_msg("%s", error_msg());
}

static void machine_stop(struct machine *m)
{
	storage_destroy(m->st);
	vm_state_release();
	pci_bus_destroy(m->bus);
	guest_memory_destroy(&m->mem);
	io_bus_destroy(&m->pio);
	io_bus_destroy(&m->mmio);
	vm_config_free(&m->cfg);
}

struct waiter {
	struct block_aio_req req;
	struct iovec iov;
	uint8_t buf[4096];
	atomic_int done;
	int ret;
};

static void waiter_done(struct block_aio_req *req, int ret)
{
	struct waiter *w = req->opaque;
	w->ret = ret;
	atomic_store(&w->done, 1);
}

/* Submit a 4 KiB write of `byte` at 0 on disk i, completed by the storage I/O thread. */
static struct waiter *submit_write(struct machine *m, unsigned i, int byte)
{
	struct waiter *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	memset(w->buf, byte, sizeof(w->buf));
	w->iov = (struct iovec){w->buf, sizeof(w->buf)};
	w->req = (struct block_aio_req){
	    .op = BLOCK_AIO_WRITE, .iov = &w->iov, .iovcnt = 1, .cb = waiter_done, .opaque = w};
	assert_int_equal(block_aio_submit(storage_disk(m->st, i)->aio, &w->req), 0);
	return w;
}

static void waiter_finish(struct waiter *w)
{
	for (int k = 0; k < 10000 && !atomic_load(&w->done); k++)
		usleep(1000);
	assert_int_equal(atomic_load(&w->done), 1);
	assert_int_equal(w->ret, 0);
	free(w);
}

static int switch_layers(void *opaque, const char *const *layers, const char *const *formats,
			 unsigned n)
{
	return storage_switch_layers(opaque, layers, formats, n);
}

static int switch_fails(void *opaque, const char *const *layers, const char *const *formats,
			unsigned n)
{
	(void)opaque, (void)layers, (void)formats, (void)n;
	return error_set(-EIO, "refused by the test");
}

static int take(struct machine *m, const char *name, vm_snapshot_switch_fn fn)
{
	const char *tops[NDISKS];
	for (unsigned i = 0; i < NDISKS; i++)
		tops[i] = storage_disk(m->st, i)->bs->filename;
	int ret = storage_quiesce(m->st);
	return ret ? ret : vm_snapshot_take_live(state, name, tops, NDISKS, fn, m->st);
}

/* The first byte of the image chain `file` as qemu-img sees it, compared with `byte`. */
static int reads(const char *file, int byte)
{
	return test_run("qemu-img dd -U if='%s' of='%s/out' bs=4096 count=1 2>/dev/null && "
			"test \"$(head -c1 '%s/out')\" = '%c'",
			file, test_tmpdir, test_tmpdir, byte);
}

static void test_take_while_paused(void **unused)
{
	(void)unused;
	struct machine m;
	machine_start(&m);
	for (unsigned i = 0; i < NDISKS; i++)
		waiter_finish(submit_write(&m, i, 'A'));

	/* A write still in flight when the take starts is finished (and flushed) first. */
	struct waiter *late = submit_write(&m, 0, 'A');
	if (take(&m, "s1", switch_layers))
		fail_msg("%s", error_msg());
	assert_int_equal(atomic_load(&late->done), 1);
	waiter_finish(late);

	/* The normal disks now write new layers in the state directory; writethrough stays. */
	assert_non_null(strstr(storage_disk(m.st, 0)->bs->filename, "/disk0-n.snap1.qcow2"));
	assert_non_null(strstr(storage_disk(m.st, 1)->bs->filename, "/disk1-r.snap1.qcow2"));
	assert_non_null(strstr(storage_disk(m.st, 2)->bs->filename, "/wt.qcow2"));
	/* A VDI disk's layer is a differencing VDI, as VirtualBox makes. */
	assert_non_null(strstr(storage_disk(m.st, 3)->bs->filename, "/disk3-v.snap1.vdi"));
	assert_string_equal(storage_disk(m.st, 3)->bs->drv->name, "vdi");
	assert_string_equal(storage_disk(m.st, 0)->path, m.cfg.disks[0].path);

	/* The frozen tops stay locked against writers (read-locked through the new chains), and
	 * so are the new layers. */
	for (unsigned i = 0; i < NDISKS; i++) {
		struct block_device *b = NULL;
		if (i == 2)
			continue; /* writethrough: not switched */
		const char *files[2] = {storage_disk(m.st, i)->bs->backing->filename,
					storage_disk(m.st, i)->bs->filename};
		for (unsigned k = 0; k < 2; k++) {
			assert_int_equal(block_open(files[k], NULL, BLOCK_OPEN_RDWR, &b), 0);
			assert_int_equal(disk_lock_chain(b, true), -EBUSY);
			block_close(b);
		}
	}
	assert_int_equal(take(&m, "s1", switch_layers), -EEXIST);
	/* restore and delete need the VM powered off: its locks refuse them. */
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_RESTORE, "s1"), -EBUSY);
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_DELETE, "s1"), -EBUSY);

	/* A take whose switch fails changes nothing: no record, no new file. */
	assert_int_equal(take(&m, "bad", switch_fails), -EIO);
	assert_int_equal(test_run("! grep -q '\"bad\"' '%s/snapshots.json' && "
				  "! ls '%s' | grep -q snap2",
				  state, state),
			 0);
	/* Nor does one whose tops are not the VM's (a stale record). */
	const char *wrong[NDISKS] = {m.cfg.disks[2].path, m.cfg.disks[1].path, NULL, NULL};
	assert_int_equal(vm_snapshot_take_live(state, "stale", wrong, NDISKS, switch_layers, m.st),
			 -ESTALE);
	assert_non_null(strstr(error_msg(), "disks changed"));

	for (unsigned i = 0; i < NDISKS; i++)
		waiter_finish(submit_write(&m, i, 'B'));
	machine_stop(&m);

	/* Powered off: the snapshot's layers hold A, the current ones B, writethrough B. */
	char f[3][400];
	snprintf(f[0], sizeof(f[0]), "%s/n.qcow2", test_tmpdir);
	snprintf(f[1], sizeof(f[1]), "%s/r.raw", test_tmpdir);
	snprintf(f[2], sizeof(f[2]), "%s/disk0-n.snap1.qcow2", state);
	assert_int_equal(reads(f[0], 'A'), 0);
	assert_int_equal(reads(f[1], 'A'), 0);
	assert_int_equal(reads(f[2], 'B'), 0);
	assert_int_equal(test_run("for f in '%s'/*.qcow2 '%s/n.qcow2'; do qemu-img check -q \"$f\" "
				  "|| exit 1; done",
				  state, test_tmpdir),
			 0);
	/* (qemu-img cannot open a differencing VDI: minivmm's own check, and the base's by qemu) */
	assert_int_equal(test_run("./minivmm img check -q --allow-backing-path '%s' "
				  "'%s/disk3-v.snap1.vdi' && qemu-img check -q '%s/v.vdi'",
				  test_tmpdir, state, test_tmpdir),
			 0);

	/* The next start writes the new layers; a restore brings A back, not for writethrough. */
	machine_start(&m);
	assert_non_null(strstr(storage_disk(m.st, 1)->bs->filename, "/disk1-r.snap1.qcow2"));
	machine_stop(&m);
	if (vm_snapshot_apply(state, VM_SNAPSHOT_RESTORE, "s1"))
		fail_msg("%s", error_msg());
	machine_start(&m);
	for (unsigned i = 0; i < NDISKS; i++) {
		uint8_t b[512];
		assert_int_equal(block_pread(storage_disk(m.st, i)->bs, 0, b, sizeof(b)), 0);
		assert_int_equal(b[0], i == 2 ? 'B' : 'A');
	}
	machine_stop(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_take_while_paused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
