/* A small AML (ACPI Machine Language) byte-code emitter.
 *
 * AML is prefix code: an operator is followed by its operands.  So the emitter is a growable byte
 * buffer where each call appends one term, and the caller appends the operands right after:
 *
 *	aml_store(a); aml_int(a, 5); aml_local(a, 0);          Store (5, Local0)
 *	aml_if(a); aml_lequal(a); aml_arg(a, 0); aml_int(a, 1);  If (LEqual (Arg0, One)) {
 *	...body...; aml_end(a);                                  }
 *
 * A method call is the method's name followed by its arguments: aml_name_string(a, "CSTA");
 * aml_int(a, 1).  Define a method before the code that calls it so disassemblers know its arity.
 *
 * Terms that carry a PkgLength (Scope, Device, Method, If, Else, While, Package, Field) open a
 * nesting level closed by aml_end(), which back-patches the length in the shortest encoding.
 * Errors (out of memory, a bad name, too deep, unbalanced aml_end) are sticky: the first one is
 * kept in a->err and later calls do nothing, so a builder checks once at the end.
 *
 * Resource templates are built in a second `struct aml` with the aml_res_* calls and appended as a
 * Buffer with aml_resource_template(), which adds the EndTag.
 */
#ifndef MINIVMM_DEVICES_AML_H
#define MINIVMM_DEVICES_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 32

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err; /* first error (-ENOMEM, -EINVAL, -E2BIG), 0 if none */
	unsigned depth;
	size_t open[AML_MAX_DEPTH]; /* offset where each open level's PkgLength goes */
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
/* Append raw bytes (table headers, descriptors). */
void aml_bytes(struct aml *a, const void *p, size_t n);
/* Close the innermost open level. */
void aml_end(struct aml *a);

/* Data objects. */
void aml_int(struct aml *a, uint64_t v); /* Zero, One, Ones or the shortest prefix */
void aml_string(struct aml *a, const char *s);
/* "\\_SB.PCI0", "^FOO", "_S5", "" (NullName).  Segments shorter than 4 are padded with '_'. */
void aml_name_string(struct aml *a, const char *path);
void aml_eisaid(struct aml *a, const char *id); /* "PNP0A03" as its compressed DWord */
void aml_buffer(struct aml *a, const void *data, size_t n);
void aml_package(struct aml *a, uint8_t nelems); /* opens */
void aml_local(struct aml *a, unsigned n);	 /* Local0..7 */
void aml_arg(struct aml *a, unsigned n);	 /* Arg0..6 */

/* Named objects and scopes (each opens a level except aml_name, aml_mutex, aml_op_region). */
void aml_name(struct aml *a, const char *name); /* Name (name, <next term>) */
void aml_scope(struct aml *a, const char *path);
void aml_device(struct aml *a, const char *path);
void aml_method(struct aml *a, const char *name, unsigned nargs, bool serialized);
void aml_mutex(struct aml *a, const char *name, unsigned sync_level);

enum aml_region_space { AML_SYSTEM_MEMORY = 0, AML_SYSTEM_IO = 1 };
/* OperationRegion (name, space, <offset term>, <length term>): the caller appends the two terms. */
void aml_op_region(struct aml *a, const char *name, enum aml_region_space space);

enum aml_field_access {
	AML_ANY_ACC = 0,
	AML_BYTE_ACC = 1,
	AML_WORD_ACC = 2,
	AML_DWORD_ACC = 3,
	AML_QWORD_ACC = 4
};
enum aml_field_update { AML_PRESERVE = 0, AML_WRITE_AS_ONES = 1, AML_WRITE_AS_ZEROS = 2 };
void aml_field(struct aml *a, const char *region, enum aml_field_access acc, bool lock,
	       enum aml_field_update update); /* opens; then aml_field_unit/aml_field_skip */
void aml_field_unit(struct aml *a, const char *name, unsigned bits);
void aml_field_skip(struct aml *a, unsigned bits); /* an unnamed (reserved) gap */

/* Control flow (aml_if, aml_else, aml_while open a level; If's predicate is the next term). */
void aml_if(struct aml *a);
void aml_else(struct aml *a);
void aml_while(struct aml *a);
void aml_return(struct aml *a);
void aml_break(struct aml *a);

/* Operators: the operands follow as terms.  Targets are terms too (aml_local, a name, or
 * aml_name_string(a, "") for "no target"). */
void aml_store(struct aml *a);	/* Store (src, dst) */
void aml_lequal(struct aml *a); /* LEqual (x, y) */
void aml_land(struct aml *a);
void aml_lor(struct aml *a);
void aml_lnot(struct aml *a);
void aml_lless(struct aml *a);
void aml_and(struct aml *a);	    /* And (x, y, target) */
void aml_or(struct aml *a);	    /* Or (x, y, target) */
void aml_shift_left(struct aml *a); /* ShiftLeft (x, count, target) */
void aml_add(struct aml *a);	    /* Add (x, y, target) */
void aml_subtract(struct aml *a);   /* Subtract (x, y, target) */
void aml_increment(struct aml *a);  /* Increment (name) */
void aml_notify(struct aml *a);	    /* Notify (object, value) */
void aml_acquire(struct aml *a, const char *mutex, uint16_t timeout_ms); /* returns a Boolean */
void aml_release(struct aml *a, const char *mutex);

/* Resource template descriptors (ACPI 6.4 section 6.4), appended to a plain byte buffer. */
enum aml_res_usage { AML_RES_PRODUCER = 0, AML_RES_CONSUMER = 1 };
void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml_res_irq_noflags(struct aml *r, unsigned irq);
/* IRQ (edge/level, active high/low, shared): 3-byte form. */
void aml_res_irq(struct aml *r, unsigned irq, bool edge, bool active_low, bool shared);
/* Extended Interrupt with one GSI. */
void aml_res_interrupt(struct aml *r, enum aml_res_usage use, bool edge, bool active_low,
		       bool shared, uint32_t gsi);
void aml_res_memory32_fixed(struct aml *r, bool rw, uint32_t base, uint32_t len);
/* Address-space descriptors: fixed min and max, positive decode, granularity 0, no translation. */
void aml_res_dword_memory(struct aml *r, enum aml_res_usage use, bool cacheable, bool rw,
			  uint32_t min, uint32_t max);
void aml_res_qword_memory(struct aml *r, enum aml_res_usage use, bool cacheable, bool rw,
			  uint64_t min, uint64_t max);
void aml_res_word_bus_number(struct aml *r, enum aml_res_usage use, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *r, enum aml_res_usage use, uint16_t min, uint16_t max);
void aml_res_dword_io(struct aml *r, enum aml_res_usage use, uint32_t min, uint32_t max);
/* Append Buffer { r's descriptors, EndTag } to a. */
void aml_resource_template(struct aml *a, const struct aml *r);

#endif
