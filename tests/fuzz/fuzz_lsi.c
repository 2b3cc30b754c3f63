/* The LSI Logic Fusion-MPT HBA (53C1030 or SAS1068, from the first input byte) driven by a
 * hostile driver through BAR1 and a fake guest RAM: the doorbell handshake with any message and
 * any length, request frames of any content (known functions half of the time: SCSI IO with SGL
 * chains anywhere, config pages, task management, event notification) posted to the request
 * FIFO, the reply FIFOs drained and refilled with any address, diagnostic and interrupt
 * registers.  One HBA of each kind for the process, reset by a message unit reset before each
 * input; completions on a helper thread, as on the VM's loop. */
#include <stdint.h>
#include <stdlib.h>

#include "tests/device/lsi_fixture.h"
#include "tests/fuzz/fuzz_completer.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_ram.h"
#include "tests/lib/testlib.h"

#define RAM_USED 0x200000ull

static struct lf hba[2];
static struct fuzz_completer completer; /* both HBAs' disks */

static void remove_images(void)
{
	for (unsigned i = 0; i < 2; i++)
		test_run("rm -rf '%s'", hba[i].dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const struct mpt_personality *p[2] = {&mpt_53c1030, &mpt_sas1068};
	atexit(remove_images);
	for (unsigned i = 0; i < 2; i++) {
		if (lf_init(&hba[i], p[i]) < 0 || lf_attach(&hba[i], 0, NULL) < 0 ||
		    lf_attach(&hba[i], 1, NULL) < 0)
			abort();
		fuzz_ram_small_pages(&hba[i].mem);
		for (unsigned d = 0; d < 2; d++)
			fuzz_completer_add(&completer, hba[i].disk[d]->aio);
	}
	fuzz_completer_start(&completer);
	return 0;
}

static const uint8_t functions[] = {MPI_FN_SCSI_IO,
				    MPI_FN_TASK_MGMT,
				    MPI_FN_IOC_INIT,
				    MPI_FN_IOC_FACTS,
				    MPI_FN_CONFIG,
				    MPI_FN_PORT_FACTS,
				    MPI_FN_PORT_ENABLE,
				    MPI_FN_EVENT_NOTIFICATION,
				    MPI_FN_EVENT_ACK,
				    MPI_FN_FW_DOWNLOAD,
				    MPI_FN_FW_UPLOAD,
				    MPI_FN_RAID_ACTION,
				    MPI_FN_TOOLBOX,
				    MPI_FN_SAS_IO_UNIT_CONTROL,
				    MPI_FN_IOC_MESSAGE_UNIT_RESET,
				    MPI_FN_IO_UNIT_RESET};

/* A message from the input: its bytes, then a known function half of the time. */
static void take_msg(struct fuzz_input *in, uint8_t *msg, size_t len)
{
	uint8_t sel = take_u8(in);
	take_bytes(in, msg, len);
	if (sel & 1)
		msg[3] = functions[(sel >> 1) % sizeof(functions)];
	if (msg[3] == MPI_FN_SCSI_IO && (sel & 0x80) && len >= 60) {
		/* a plausible SGL start so the walk goes deep: simple or chain, near the data */
		msg[0] &= 1; /* target 0 or 1 */
		put_le32(msg + 48, (get_le32(msg + 48) & ~MPI_SGE_TYPE_MASK) |
				       (sel & 0x40 ? MPI_SGE_TYPE_CHAIN : MPI_SGE_TYPE_SIMPLE));
		put_le64(msg + 52,
			 (sel & 0x20 ? LF_CHAIN : LF_DATA) + (get_le32(msg + 52) & 0xFF0));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	uint8_t first = take_u8(&in);
	struct lf *f = &hba[first & 1];

	lf_w(f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	fuzz_ram_zero(&f->mem, 0, LF_CHAIN + 0x10000); /* frames, replies, sense, chains */
	if (first & 2)
		lf_bring_up(f);
	while (fuzz_left(&in)) {
		uint8_t op = take_u8(&in);
		switch (op & 7) {
		case 0: { /* guest RAM: frames, chains, sense, data */
			uint32_t gpa = take_u32(&in) % RAM_USED;
			size_t n = take_u8(&in);
			if (gpa + n > RAM_USED)
				n = RAM_USED - gpa;
			take_bytes(&in, guest_memory_ptr(&f->mem, gpa, n ? n : 1), n);
			break;
		}
		case 1: /* a doorbell word: a function, a handshake, or a handshake's next dword */
			lf_w(f, MPI_REG_DOORBELL, take_u32(&in));
			break;
		case 2: /* any register, any value (write sequence, diagnostic, masks, FIFOs) */
			lf_w(f, (take_u8(&in) % 0x50) & ~3u, take_u32(&in));
			break;
		case 3: { /* a request frame posted to the request FIFO */
			unsigned slot = (op >> 3) % 16;
			uint64_t gpa = LF_FRAME + slot * MPT_REQUEST_FRAME;
			take_msg(&in, lf_ram(f, gpa), MPT_REQUEST_FRAME);
			lf_w(f, op & 0x80 ? MPI_REG_HI_PRI_REQUEST_FIFO : MPI_REG_REQUEST_FIFO,
			     op & 0x40 ? take_u32(&in) : (uint32_t)gpa);
			break;
		}
		case 4: { /* a whole handshake: any message of up to 33 dwords */
			uint8_t msg[4 * 33];
			uint16_t reply[MPT_HS_REPLY_WORDS];
			unsigned dwords = take_u8(&in) % 34;
			take_msg(&in, msg, sizeof(msg));
			lf_handshake(f, msg, 4 * dwords, reply, MPT_HS_REPLY_WORDS);
			break;
		}
		case 5: /* the driver takes a reply and gives a frame back (or any address) */
		{
			uint32_t v = lf_pop(f);
			if (v != 0xFFFFFFFF && (v & 0x80000000u))
				lf_w(f, MPI_REG_REPLY_FIFO, op & 0x40 ? take_u32(&in) : v << 1);
			break;
		}
		case 6: /* any register read (reading the doorbell advances a handshake reply) */
			lf_r(f, (take_u8(&in) % 0x50) & ~3u);
			break;
		default: /* reply frames posted, as the driver does after IOC INIT */
			for (unsigned i = take_u8(&in) % LF_NREPLY; i; i--)
				lf_w(f, MPI_REG_REPLY_FIFO,
				     (uint32_t)(LF_REPLY_FRAMES + i * LF_REPLY_SIZE));
			break;
		}
	}
	/* Drained before the input ends (see fuzz_nvme.c): LeakSanitizer cannot see a request
	 * referenced only from io_uring's user data. */
	lf_w(f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	return 0;
}
