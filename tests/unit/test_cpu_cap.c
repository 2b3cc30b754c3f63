/* The execution cap's budget (cpu/cpu_cap.h) on simulated clocks: the decisions, debt carried over
 * a period, no credit banked by idle periods, gaps, and the long-run share of a vCPU that spins
 * flat out, checked by a timer at the times cpu_cap_check() asks for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cpu/cpu_cap.h"

#define MS 1000000LL
#define T0 (1000 * MS)

static void test_decisions(void **unused)
{
	(void)unused;
	struct cpu_cap_window w = {0};
	int64_t next;
	assert_int_equal(cpu_cap_check(&w, 30, T0, 5 * MS, &next), 0);
	assert_int_equal(next, T0 + 30 * MS); /* flat out, the budget lasts 30 ms */
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 20 * MS, 25 * MS, &next), 0);
	assert_int_equal(next, T0 + 30 * MS);
	/* spent: sleep to the period's end */
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 31 * MS, 35 * MS, &next), T0 + 100 * MS);
	assert_int_equal(next, T0 + 100 * MS);
	/* next period: a fresh budget */
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 100 * MS, 35 * MS, &next), 0);
	assert_int_equal(next, T0 + 130 * MS);
}

static void test_debt_and_no_credit(void **unused)
{
	(void)unused;
	struct cpu_cap_window w = {0};
	int64_t next;
	cpu_cap_check(&w, 30, T0, 0, &next);
	/* 15 ms over the budget in the first period ... */
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 50 * MS, 45 * MS, &next), T0 + 100 * MS);
	/* ... is owed in the second: 15 ms left */
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 100 * MS, 45 * MS, &next), 0);
	assert_int_equal(next, T0 + 115 * MS);
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 116 * MS, 61 * MS, &next), T0 + 200 * MS);
	/* an idle third period banks nothing for the fourth */
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 200 * MS, 61 * MS, &next), 0);
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 300 * MS, 61 * MS, &next), 0);
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 335 * MS, 92 * MS, &next), T0 + 400 * MS);
}

static void test_gap(void **unused)
{
	(void)unused;
	struct cpu_cap_window w = {0};
	int64_t next;
	cpu_cap_check(&w, 50, T0, 0, &next);
	/* paused for 10 s: the period starts at the next look */
	assert_int_equal(cpu_cap_check(&w, 50, T0 + 10000 * MS, 10 * MS, &next), 0);
	assert_int_equal(w.start, T0 + 10000 * MS);
	assert_int_equal(next, T0 + 10050 * MS); /* the 10 ms were in the gap */
	/* a clock before the window (a new window) */
	struct cpu_cap_window v = {.start = T0 + 5000 * MS};
	assert_int_equal(cpu_cap_check(&v, 50, T0, 0, &next), 0);
	assert_int_equal(v.start, T0);
}

/* A vCPU that spins whenever allowed; the timer looks when asked (at least every ms, as the
 * timer thread) and the vCPU notices a kick 0.2 ms late.  Its share of 20 s must be the cap. */
static void share(unsigned percent)
{
	struct cpu_cap_window w = {0};
	int64_t now = T0, busy = 0, end = T0 + 20000 * MS, next;
	while (now < end) {
		int64_t until = cpu_cap_check(&w, percent, now, busy, &next);
		if (until) {
			now = until; /* sleeps to the period's end */
			continue;
		}
		int64_t run = next - now;
		if (run < MS)
			run = MS;
		run += MS / 5; /* kick latency */
		busy += run;
		now += run;
	}
	double got = 100.0 * busy / (end - T0);
	print_message("cap %u%%: %.2f%% busy\n", percent, got);
	assert_true(got > percent - 1.0 && got < percent + 1.0);
}

static void test_share(void **unused)
{
	(void)unused;
	share(10);
	share(30);
	share(50);
	share(80);
	share(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decisions),
	    cmocka_unit_test(test_debt_and_no_credit),
	    cmocka_unit_test(test_gap),
	    cmocka_unit_test(test_share),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
