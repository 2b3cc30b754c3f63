/* The NVMe controller (two namespaces) driven by a hostile host through BAR0 and a fake guest
 * RAM: controller registers of any value (enable, shutdown, queue bases, AQA), doorbells for any
 * queue with any value, admin and I/O commands built from the input (known opcodes half of the
 * time) with PRPs, PRP lists and SGLs that point anywhere, shadow doorbells (Doorbell Buffer
 * Config) and completions run between the steps.  One controller for the process (images per
 * input would be slow), disabled (CC.EN = 0, its requests drained) before each input, which also
 * proves a disable with requests in flight.  Completions run on a helper thread, as on the
 * VM's loop (fuzz_completer.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/fuzz/fuzz_completer.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_ram.h"

#include "tests/device/nvme_fixture.h"

#define RAM_USED 0x300000ull /* queues, PRP lists, admin buffers, data */

static struct nv *t;

static void remove_images(void)
{
	test_tmpdir_teardown(NULL);
}

static struct fuzz_completer completer;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The namespaces in memory (tmpfs): a flush command then costs no disk fsync. */
	snprintf(test_tmpdir, sizeof(test_tmpdir), "/dev/shm/minivmm-fuzz-nvme-XXXXXX");
	if (!mkdtemp(test_tmpdir))
		abort();
	atexit(remove_images);
	t = nv_new(2, NULL, 4);
	fuzz_ram_small_pages(&t->f.mem);
	/* Completions on a thread of their own, as on the VM's loop: a disable waits for them. */
	for (unsigned d = 0; d < t->ndisks; d++)
		fuzz_completer_add(&completer, t->disk[d]->aio);
	fuzz_completer_start(&completer);
	return 0;
}

static const uint8_t admin_ops[] = {
    NVME_ADM_DELETE_SQ,	   NVME_ADM_CREATE_SQ,	 NVME_ADM_GET_LOG_PAGE, NVME_ADM_DELETE_CQ,
    NVME_ADM_CREATE_CQ,	   NVME_ADM_IDENTIFY,	 NVME_ADM_ABORT,	NVME_ADM_SET_FEATURES,
    NVME_ADM_GET_FEATURES, NVME_ADM_ASYNC_EVENT, NVME_ADM_DBBUF_CONFIG};
static const uint8_t io_ops[] = {NVME_CMD_FLUSH,   NVME_CMD_WRITE,	  NVME_CMD_READ,
				 NVME_CMD_COMPARE, NVME_CMD_WRITE_ZEROES, NVME_CMD_DSM};

/* An address: in the data area, in the queue area, or anything (MMIO, past RAM, misaligned). */
static uint64_t take_addr(struct fuzz_input *in)
{
	uint8_t k = take_u8(in);
	switch (k & 3) {
	case 0:
		return NV_DATA + (take_u16(in) & ~7u) * 16ull;
	case 1:
		return (take_u32(in) % RAM_USED) & ~0xFFFull;
	case 2:
		return NV_PRPLIST + (k >> 2) * 8ull;
	default:
		return take_u64(in);
	}
}

static void submit(struct fuzz_input *in, unsigned q, uint8_t op)
{
	struct nv_cmd c;
	uint8_t sel = take_u8(in);
	if (sel & 1)
		c.opc = q ? io_ops[take_u8(in) % sizeof(io_ops)]
			  : admin_ops[take_u8(in) % sizeof(admin_ops)];
	else
		c.opc = take_u8(in);
	c.flags = op & 0xC0; /* PSDT: PRP, SGL, or the reserved value */
	c.nsid = sel & 2 ? 1 + (sel >> 6 & 1) : take_u32(in);
	c.prp1 = take_addr(in);
	c.prp2 = take_addr(in);
	for (unsigned i = 0; i < 6; i++)
		c.cdw[i] = sel & (4 << (i % 4)) ? take_u16(in) % 64 : take_u32(in);
	unsigned n = 1 + (sel >> 7) * (take_u8(in) % 16); /* several at one doorbell */
	for (unsigned i = 0; i < n; i++)
		nv_put(t, q, &c);
	nv_ring(t, q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};

	nv_disable(t); /* returns once every request has completed */
	if (nvme_inflight(t->c))
		abort();
	fuzz_ram_zero(&t->f.mem, 0, NV_BUF); /* not a 1 MiB memset */
	t->sq_tail[1] = t->cq_head[1] = 0;
	t->phase[1] = true;
	if (take_u8(&in) & 1)
		nv_start(t); /* enabled with one I/O queue pair: the steps reach I/O */
	while (fuzz_left(&in)) {
		uint8_t op = take_u8(&in);
		switch (op & 7) {
		case 0: { /* guest RAM */
			uint32_t gpa = take_u32(&in) % RAM_USED;
			size_t n = take_u8(&in);
			if (gpa + n > RAM_USED)
				n = RAM_USED - gpa;
			take_bytes(&in, vf_ram(&t->f, gpa, n ? n : 1), n);
			break;
		}
		case 1: /* controller registers (CC, AQA, ASQ, ACQ, INTMS, NSSR...) */
			nv_w(t, take_u8(&in) % 0x40, op & 8 ? 8 : 4, take_u64(&in));
			break;
		case 2: /* any doorbell, any value */
			nv_w(t, NVME_REG_DOORBELL + take_u8(&in) % 0x50, 4, take_u16(&in));
			break;
		case 3:
			submit(&in, 0, op);
			break;
		case 4:
			submit(&in, 1, op);
			break;
		case 5: /* let the completions catch up (bounded: only to stop a hang) */
			for (int i = 0; i < 2000 && nvme_inflight(t->c); i++)
				sched_yield();
			break;
		case 6: /* reads, any offset in the BAR */
			nv_r(t, take_u16(&in) % 0x2000, op & 8 ? 8 : 4);
			break;
		default: /* the host consumes completions: head doorbells rung the usual way */
			for (unsigned q = 0; q < 2; q++)
				for (unsigned i = 0; i < 2 * 4096 && nv_ready(t, q); i++) {
					if (++t->cq_head[q] == nv_qsize(t, q)) {
						t->cq_head[q] = 0;
						t->phase[q] = !t->phase[q];
					}
					nv_w(t, NVME_REG_DOORBELL + 8 * q + 4, 4, t->cq_head[q]);
				}
			break;
		}
	}
	/* Drained before the input ends: a request in flight is referenced only from io_uring's
	 * user data (kernel memory), where LeakSanitizer's end-of-input check cannot see it. */
	nv_disable(t);
	return 0;
}
