/* Byte-order access to on-disk and in-memory structures: one set of helpers for every image format
 * (qcow2 and VHD are big-endian, VDI, VHDX, VMDK and Parallels little-endian) and for device
 * structures in guest memory.
 *
 * p need not be aligned: each helper goes through memcpy, which the compiler turns into a single
 * load or store, so there is no unaligned cast for UBSan to object to.
 *
 *   get_le16 get_le32 get_le64   put_le16 put_le32 put_le64
 *   get_be16 get_be32 get_be64   put_be16 put_be32 put_be64
 */
#ifndef MINIVMM_LIB_ENDIAN_H
#define MINIVMM_LIB_ENDIAN_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* One getter and one setter for a byte order (le, be) and a width (16, 32, 64), built on the
 * <endian.h> conversions leNNtoh/htoleNN and beNNtoh/htobeNN. */
#define ENDIAN_ACCESSORS(order, bits)                                                              \
	static inline uint##bits##_t get_##order##bits(const void *p)                              \
	{                                                                                          \
		uint##bits##_t v;                                                                  \
		memcpy(&v, p, sizeof(v));                                                          \
		return order##bits##toh(v);                                                        \
	}                                                                                          \
	static inline void put_##order##bits(void *p, uint##bits##_t v)                            \
	{                                                                                          \
		v = hto##order##bits(v);                                                           \
		memcpy(p, &v, sizeof(v));                                                          \
	}

ENDIAN_ACCESSORS(le, 16)
ENDIAN_ACCESSORS(le, 32)
ENDIAN_ACCESSORS(le, 64)
ENDIAN_ACCESSORS(be, 16)
ENDIAN_ACCESSORS(be, 32)
ENDIAN_ACCESSORS(be, 64)

#undef ENDIAN_ACCESSORS

#endif
