/* AML emitter tests: byte-exact encodings checked against the ACPI 6.4 grammar examples and
 * against ACPICA's compiler (iasl 20200925 -oa, optimisations off) for the same ASL. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/aml.h"

#define EXPECT(a, ...)                                                                             \
	do {                                                                                       \
		static const uint8_t want_[] = {__VA_ARGS__};                                      \
		assert_int_equal((a)->err, 0);                                                     \
		assert_int_equal((a)->len, sizeof(want_));                                         \
		assert_memory_equal((a)->buf, want_, sizeof(want_));                               \
	} while (0)

static void test_integers(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_int(&a, 0);
	aml_int(&a, 1);
	aml_int(&a, UINT64_MAX);
	aml_int(&a, 0x12);
	aml_int(&a, 0xFF);
	aml_int(&a, 0x100);
	aml_int(&a, 0x1234);
	aml_int(&a, 0x12345678);
	aml_int(&a, 0x123456789AULL);
	EXPECT(&a, 0x00, 0x01, 0xFF, 0x0A, 0x12, 0x0A, 0xFF, 0x0B, 0x00, 0x01, 0x0B, 0x34, 0x12,
	       0x0C, 0x78, 0x56, 0x34, 0x12, 0x0E, 0x9A, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00);
	aml_free(&a);
}

static void test_names(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_name_string(&a, "_S5");
	aml_name_string(&a, "\\_SB.PCI0");
	aml_name_string(&a, "\\_SB.CPUS.C001");
	aml_name_string(&a, "^^FOO");
	aml_name_string(&a, "");
	aml_name_string(&a, "\\");
	EXPECT(&a, '_', 'S', '5', '_', '\\', 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', '\\',
	       0x2F, 3, '_', 'S', 'B', '_', 'C', 'P', 'U', 'S', 'C', '0', '0', '1', '^', '^', 'F',
	       'O', 'O', '_', 0x00, '\\', 0x00);
	aml_free(&a);
}

static void test_bad_names(void **state)
{
	(void)state;
	static const char *const bad[] = {"1ABC", "ABCDE", "abc", "\\_SB..X", "A.", "^\\A", "A B"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aml a;
		aml_init(&a);
		aml_name_string(&a, bad[i]);
		assert_int_equal(a.err, -EINVAL);
		/* Errors are sticky: nothing more is appended. */
		size_t len = a.len;
		aml_int(&a, 5);
		assert_int_equal(a.len, len);
		aml_free(&a);
	}
}

static void test_eisaid_and_string(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_eisaid(&a, "PNP0A03");
	aml_eisaid(&a, "PNP0501");
	aml_string(&a, "ACPI0007");
	EXPECT(&a, 0x0C, 0x41, 0xD0, 0x0A, 0x03, 0x0C, 0x41, 0xD0, 0x05, 0x01, 0x0D, 'A', 'C', 'P',
	       'I', '0', '0', '0', '7', 0x00);
	aml_free(&a);

	aml_init(&a);
	aml_eisaid(&a, "pnp0a03");
	assert_int_equal(a.err, -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_eisaid(&a, "PNP0A0G");
	assert_int_equal(a.err, -EINVAL);
	aml_free(&a);
}

/* Name (_S5, Package (0x04) { 0x05, 0x05, Zero, Zero }) and Method (_STA) { Return (0x0F) } */
static void test_package_and_method(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_name(&a, "_S5");
	aml_package(&a, 4);
	aml_int(&a, 5);
	aml_int(&a, 5);
	aml_int(&a, 0);
	aml_int(&a, 0);
	aml_end(&a);
	aml_method(&a, "_STA", 0, false);
	aml_return(&a);
	aml_int(&a, 0x0F);
	aml_end(&a);
	EXPECT(&a, 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00,
	       0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xA4, 0x0A, 0x0F);
	aml_free(&a);
}

/* PkgLength boundaries: 1 byte up to 63, then 2 bytes (12 bits), 3 bytes (20 bits). */
static void check_pkglen(size_t body, const uint8_t *want, size_t n)
{
	static uint8_t zeros[0x100000];
	assert_true(body <= sizeof(zeros));
	struct aml a;
	aml_init(&a);
	aml_if(&a);
	aml_bytes(&a, zeros, body);
	aml_end(&a);
	assert_int_equal(a.err, 0);
	assert_int_equal(a.len, 1 + n + body);
	assert_int_equal(a.buf[0], 0xA0);
	assert_memory_equal(a.buf + 1, want, n);
	aml_free(&a);
}

static void test_pkglength(void **state)
{
	(void)state;
	check_pkglen(0, (const uint8_t[]){0x01}, 1);
	check_pkglen(62, (const uint8_t[]){0x3F}, 1);
	check_pkglen(63, (const uint8_t[]){0x41, 0x04}, 2);		     /* 65 */
	check_pkglen(4093, (const uint8_t[]){0x4F, 0xFF}, 2);		     /* 4095 */
	check_pkglen(4094, (const uint8_t[]){0x81, 0x00, 0x01}, 3);	     /* 4097 */
	check_pkglen(0xFFFFC, (const uint8_t[]){0x8F, 0xFF, 0xFF}, 3);	     /* 0xFFFFF */
	check_pkglen(0xFFFFD, (const uint8_t[]){0xC1, 0x00, 0x00, 0x01}, 4); /* 0x100001 */
}

static void test_unbalanced(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_end(&a);
	assert_int_equal(a.err, -EINVAL);
	aml_free(&a);
	aml_init(&a);
	for (int i = 0; i < AML_MAX_DEPTH + 1; i++)
		aml_if(&a);
	assert_int_equal(a.err, -E2BIG);
	aml_free(&a);
}

static void test_resource_errors(void **state)
{
	(void)state;
	struct aml r, a;
	aml_init(&r);
	aml_res_irq_noflags(&r, 16);
	assert_int_equal(r.err, -EINVAL);
	aml_free(&r);
	aml_init(&r);
	aml_res_word_io(&r, AML_RES_PRODUCER, 0, 0xFFFF); /* length 0x10000 does not fit */
	assert_int_equal(r.err, -EINVAL);
	aml_init(&a);
	aml_resource_template(&a, &r);
	assert_int_equal(a.err, -EINVAL);
	aml_free(&a);
	aml_free(&r);
	aml_init(&r);
	aml_res_dword_memory(&r, AML_RES_PRODUCER, false, true, 0x2000, 0x1000);
	assert_int_equal(r.err, -EINVAL);
	aml_free(&r);
}

/* The ASL below, compiled by iasl -oa; the bytes after the SSDT header.
 *
 * Scope (\_SB) { Device (RES) {
 *   Name (_HID, EisaId ("PNP0C02"))
 *   Name (_CRS, ResourceTemplate () {
 *     IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
 *     IRQNoFlags () {4}
 *     IRQ (Level, ActiveLow, Shared) {11}
 *     Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) {9}
 *     Memory32Fixed (ReadWrite, 0xFEC00000, 0x00001000)
 *     WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xFF, 0, 0x100)
 *     WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0x0D00, 0xFFFF, 0,
 *             0xF300)
 *     DWordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0x1000, 0x1FFF, 0,
 *              0x1000)
 *     DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0,
 *                  0xC0000000, 0xFEBFFFFF, 0, 0x3EC00000)
 *     QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite, 0,
 *                  0x10000000000, 0x10FFFFFFFFF, 0, 0x1000000000) })
 *   OperationRegion (PRST, SystemIO, 0x0CD8, 0x0C)
 *   Field (PRST, ByteAcc, NoLock, WriteAsZeros) { Offset (0x04), CPEN, 1, , 7, CCMD, 8 }
 *   OperationRegion (MMIO, SystemMemory, 0xFED00000, 0x400)
 *   Field (MMIO, DWordAcc, Lock, Preserve) { REG0, 32, REG1, 300 }
 *   Mutex (MTX0, 0x03)
 *   Method (M1, 2, Serialized) {
 *     Acquire (MTX0, 0xFFFF)
 *     Store (0x12345678, Local0)
 *     While (LLess (Local0, 0x10)) {
 *       Increment (Local0)
 *       If (LAnd (LEqual (Arg0, One), LNot (LOr (Arg1, Zero)))) { Break }
 *       Else {
 *         Add (Local0, 0x1234, Local1)
 *         Subtract (Local1, One, Local2)
 *         And (Local2, 0xFF, Local3)
 *         Or (Local3, Ones, Local4)
 *         ShiftLeft (One, 0x123456789A, Local5) } }
 *     Notify (\_SB.RES, 0x80)
 *     Release (MTX0)
 *     Return (Package (0x02) { "abc", Buffer (0x03) { 0x01, 0x02, 0x03 } }) } } }
 */
static const uint8_t iasl_vector[] = {
    0x10, 0x44, 0x18, 0x5c, 0x5f, 0x53, 0x42, 0x5f, 0x5b, 0x82, 0x4b, 0x17, 0x52, 0x45, 0x53, 0x5f,
    0x08, 0x5f, 0x48, 0x49, 0x44, 0x0c, 0x41, 0xd0, 0x0c, 0x02, 0x08, 0x5f, 0x43, 0x52, 0x53, 0x11,
    0x4c, 0x0a, 0x0a, 0xa8, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x23,
    0x00, 0x08, 0x18, 0x89, 0x06, 0x00, 0x01, 0x01, 0x09, 0x00, 0x00, 0x00, 0x86, 0x09, 0x00, 0x01,
    0x00, 0x00, 0xc0, 0xfe, 0x00, 0x10, 0x00, 0x00, 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00,
    0x00, 0x0d, 0xff, 0xff, 0x00, 0x00, 0x00, 0xf3, 0x87, 0x17, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0xff, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    0x00, 0x00, 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0,
    0xff, 0xff, 0xbf, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3e, 0x8a, 0x2b, 0x00, 0x00,
    0x0c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x79, 0x00, 0x5b, 0x80, 0x50, 0x52,
    0x53, 0x54, 0x01, 0x0b, 0xd8, 0x0c, 0x0a, 0x0c, 0x5b, 0x81, 0x14, 0x50, 0x52, 0x53, 0x54, 0x41,
    0x00, 0x20, 0x43, 0x50, 0x45, 0x4e, 0x01, 0x00, 0x07, 0x43, 0x43, 0x4d, 0x44, 0x08, 0x5b, 0x80,
    0x4d, 0x4d, 0x49, 0x4f, 0x00, 0x0c, 0x00, 0x00, 0xd0, 0xfe, 0x0b, 0x00, 0x04, 0x5b, 0x81, 0x11,
    0x4d, 0x4d, 0x49, 0x4f, 0x13, 0x52, 0x45, 0x47, 0x30, 0x20, 0x52, 0x45, 0x47, 0x31, 0x4c, 0x12,
    0x5b, 0x01, 0x4d, 0x54, 0x58, 0x30, 0x03, 0x14, 0x4d, 0x06, 0x4d, 0x31, 0x5f, 0x5f, 0x0a, 0x5b,
    0x23, 0x4d, 0x54, 0x58, 0x30, 0xff, 0xff, 0x70, 0x0c, 0x78, 0x56, 0x34, 0x12, 0x60, 0xa2, 0x33,
    0x95, 0x60, 0x0a, 0x10, 0x75, 0x60, 0xa0, 0x0a, 0x90, 0x93, 0x68, 0x01, 0x92, 0x91, 0x69, 0x00,
    0xa5, 0xa1, 0x20, 0x72, 0x60, 0x0b, 0x34, 0x12, 0x61, 0x74, 0x61, 0x01, 0x62, 0x7b, 0x62, 0x0a,
    0xff, 0x63, 0x7d, 0x63, 0xff, 0x64, 0x79, 0x01, 0x0e, 0x9a, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00,
    0x00, 0x65, 0x86, 0x5c, 0x2e, 0x5f, 0x53, 0x42, 0x5f, 0x52, 0x45, 0x53, 0x5f, 0x0a, 0x80, 0x5b,
    0x27, 0x4d, 0x54, 0x58, 0x30, 0xa4, 0x12, 0x0e, 0x02, 0x0d, 0x61, 0x62, 0x63, 0x00, 0x11, 0x06,
    0x0a, 0x03, 0x01, 0x02, 0x03};

static void emit_resources(struct aml *a)
{
	struct aml r;
	aml_init(&r);
	aml_res_io(&r, 0x3F8, 0x3F8, 1, 8);
	aml_res_irq_noflags(&r, 4);
	aml_res_irq(&r, 11, false, true, true);
	aml_res_interrupt(&r, AML_RES_CONSUMER, false, false, false, 9);
	aml_res_memory32_fixed(&r, true, 0xFEC00000, 0x1000);
	aml_res_word_bus_number(&r, AML_RES_PRODUCER, 0, 0xFF);
	aml_res_word_io(&r, AML_RES_PRODUCER, 0x0D00, 0xFFFF);
	aml_res_dword_io(&r, AML_RES_PRODUCER, 0x1000, 0x1FFF);
	aml_res_dword_memory(&r, AML_RES_PRODUCER, false, true, 0xC0000000, 0xFEBFFFFF);
	aml_res_qword_memory(&r, AML_RES_PRODUCER, true, true, 0x10000000000ULL, 0x10FFFFFFFFFULL);
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);
}

static void emit_fields(struct aml *a)
{
	aml_op_region(a, "PRST", AML_SYSTEM_IO);
	aml_int(a, 0xCD8);
	aml_int(a, 0x0C);
	aml_field(a, "PRST", AML_BYTE_ACC, false, AML_WRITE_AS_ZEROS);
	aml_field_skip(a, 32);
	aml_field_unit(a, "CPEN", 1);
	aml_field_skip(a, 7);
	aml_field_unit(a, "CCMD", 8);
	aml_end(a);
	aml_op_region(a, "MMIO", AML_SYSTEM_MEMORY);
	aml_int(a, 0xFED00000);
	aml_int(a, 0x400);
	aml_field(a, "MMIO", AML_DWORD_ACC, true, AML_PRESERVE);
	aml_field_unit(a, "REG0", 32);
	aml_field_unit(a, "REG1", 300);
	aml_end(a);
	aml_mutex(a, "MTX0", 3);
}

/* op (x, y, target) with Local targets */
static void emit_binop(struct aml *a, void (*op)(struct aml *), unsigned x, uint64_t y,
		       unsigned dst)
{
	op(a);
	aml_local(a, x);
	aml_int(a, y);
	aml_local(a, dst);
}

static void emit_method(struct aml *a)
{
	aml_method(a, "M1", 2, true);
	aml_acquire(a, "MTX0", 0xFFFF);
	aml_store(a);
	aml_int(a, 0x12345678);
	aml_local(a, 0);
	aml_while(a);
	aml_lless(a);
	aml_local(a, 0);
	aml_int(a, 0x10);
	aml_increment(a);
	aml_local(a, 0);
	aml_if(a);
	aml_land(a);
	aml_lequal(a);
	aml_arg(a, 0);
	aml_int(a, 1);
	aml_lnot(a);
	aml_lor(a);
	aml_arg(a, 1);
	aml_int(a, 0);
	aml_break(a);
	aml_end(a);
	aml_else(a);
	emit_binop(a, aml_add, 0, 0x1234, 1);
	emit_binop(a, aml_subtract, 1, 1, 2);
	emit_binop(a, aml_and, 2, 0xFF, 3);
	emit_binop(a, aml_or, 3, UINT64_MAX, 4);
	aml_shift_left(a);
	aml_int(a, 1);
	aml_int(a, 0x123456789AULL);
	aml_local(a, 5);
	aml_end(a);
	aml_end(a);
	aml_notify(a);
	aml_name_string(a, "\\_SB.RES");
	aml_int(a, 0x80);
	aml_release(a, "MTX0");
	aml_return(a);
	aml_package(a, 2);
	aml_string(a, "abc");
	aml_buffer(a, (const uint8_t[]){1, 2, 3}, 3);
	aml_end(a);
	aml_end(a);
}

static void test_against_iasl(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_scope(&a, "\\_SB");
	aml_device(&a, "RES");
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0C02");
	emit_resources(&a);
	emit_fields(&a);
	emit_method(&a);
	aml_end(&a);
	aml_end(&a);
	assert_int_equal(a.err, 0);
	assert_int_equal(a.depth, 0);
	if (a.len != sizeof(iasl_vector) || memcmp(a.buf, iasl_vector, a.len)) {
		for (size_t i = 0; i < a.len; i++)
			print_message("%02x%s", a.buf[i], i % 16 == 15 ? "\n" : " ");
		print_message("\n");
	}
	assert_int_equal(a.len, sizeof(iasl_vector));
	assert_memory_equal(a.buf, iasl_vector, sizeof(iasl_vector));
	aml_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_integers),	       cmocka_unit_test(test_names),
	    cmocka_unit_test(test_bad_names),	       cmocka_unit_test(test_eisaid_and_string),
	    cmocka_unit_test(test_package_and_method), cmocka_unit_test(test_pkglength),
	    cmocka_unit_test(test_unbalanced),	       cmocka_unit_test(test_resource_errors),
	    cmocka_unit_test(test_against_iasl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
