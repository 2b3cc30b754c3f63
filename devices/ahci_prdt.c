/* Physical region descriptor tables: a command's scatter-gather list in guest memory.
 *
 * Each entry is 16 bytes: data base address (64 bits), then DBC in bits 21:0 of the last dword,
 * the byte count minus one (so a zero DBC is one byte, never zero: no entry can stall the walk,
 * CVE-2014-9718). The walk stops at PRDTL entries or at the length asked for, whichever comes
 * first; entries are read with guest_memory_read and buffers go through the one scatter-gather
 * walker (memory/sg_list.h).
 */
#include <errno.h>

#include "devices/ahci_internal.h"
#include "memory/guest_memory.h"
#include "memory/sg_list.h"
#include "lib/endian.h"

int ahci_prdt_next(const struct guest_memory *mem, struct ahci_prdt *w, struct iovec *iov,
		   int iov_max, uint64_t len, uint64_t *mapped)
{
	struct sg_list sg;
	sg_list_init(&sg, mem, iov, (unsigned)iov_max, len);
	while (sg.bytes < len && w->idx < w->prdtl) {
		uint8_t prd[PRD_SIZE];
		uint64_t gpa = w->ctba + CMDT_PRDT + (uint64_t)w->idx * PRD_SIZE;
		if (guest_memory_read(mem, gpa, prd, sizeof(prd)) < 0)
			return -EFAULT;
		uint64_t dba = ahci_u64(get_le32(prd), get_le32(prd + 4));
		uint64_t size = (get_le32(prd + 12) & PRD_DBC_MASK) + 1;
		if (w->off >=
		    size) { /* cannot happen unless the guest rewrote the entry: move on */
			w->idx++;
			w->off = 0;
			continue;
		}
		uint64_t piece = size - w->off;
		if (piece > len - sg.bytes)
			piece = len - sg.bytes;
		if (dba + w->off < dba)
			return -EFAULT;
		int r = sg_list_add(&sg, dba + w->off, piece);
		if (r == -ENOSPC)
			break; /* iov is full: the caller continues from here next time */
		if (r < 0)
			return -EFAULT;
		w->off += piece;
		if (w->off == size) {
			w->idx++;
			w->off = 0;
		}
	}
	w->done += sg.bytes;
	*mapped = sg.bytes;
	return (int)sg.n;
}

int ahci_prdt_covers(const struct guest_memory *mem, const struct ahci_prdt *w, uint64_t len)
{
	struct ahci_prdt walk = *w; /* the caller's walk stays where it is */
	struct iovec iov[16];
	while (len) {
		uint64_t got = 0;
		int n = ahci_prdt_next(mem, &walk, iov, 16, len, &got);
		if (n < 0)
			return n;
		if (!got)
			return -ENOSPC;
		len -= got;
	}
	return 0;
}
