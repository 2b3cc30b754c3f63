/* The execution cap's budget (cpu/cpu_cap.h) on simulated clocks: the decisions, debt carried over
 * a period, no credit banked by idle periods, gaps, and the long-run share of a vCPU that spins
 * flat out, checked by a timer at the times cpu_cap_check() asks for. */
#include <setjmp.h>
#include <stdbool.h>
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
	/* a fresh window holds one budget (30 ms); flat out it drains at 70% of wall time */
	assert_int_equal(cpu_cap_check(&w, 30, T0, 5 * MS, &next), 0);
	assert_int_equal(next, T0 + 30 * MS * 100 / 70);
	/* 20 ms later, 20 ms run: 30 + 6 - 20 = 16 ms left */
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 20 * MS, 25 * MS, &next), 0);
	assert_int_equal(w.tokens, 16 * MS);
	/* 30 ms later, 30 ms run: 16 + 9 - 30 = -5 ms; sleep until the bucket holds 70% of a
	 * budget (21 ms), filling at 30% of wall time */
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 50 * MS, 55 * MS, &next),
			 T0 + 50 * MS + 26 * MS * 100 / 30);
	/* asleep until then: it may run the budget (30 ms) flat out */
	int64_t wake = next;
	assert_int_equal(cpu_cap_check(&w, 30, wake, 55 * MS, &next), 0);
	assert_true(next >= wake + 29 * MS && next <= wake + 31 * MS);
}

static void test_debt_and_no_credit(void **unused)
{
	(void)unused;
	struct cpu_cap_window w = {0};
	int64_t next;
	cpu_cap_check(&w, 30, T0, 0, &next);
	/* a late kick: 65 ms run in 50 ms (the fake clock allows it): 30 + 15 - 65 = 20 ms owed */
	int64_t until = cpu_cap_check(&w, 30, T0 + 50 * MS, 65 * MS, &next);
	assert_int_equal(w.tokens, -20 * MS);
	/* the debt is slept off too: (20 + 21) ms at 30% */
	assert_int_equal(until, T0 + 50 * MS + 41 * MS * 100 / 30);
	/* a kick 2 s late (a stalled machine): 30% of 300 ms owed, not 2 s */
	struct cpu_cap_window v = {0};
	cpu_cap_check(&v, 30, T0, 0, &next);
	cpu_cap_check(&v, 30, T0 + 2000 * MS, 2000 * MS, &next);
	assert_int_equal(v.tokens, -90 * MS);
	/* idle 10 s (paused, or halted): the bucket holds 21 + 30% of 300 = 111 ms, not 3 s */
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 10000 * MS, 65 * MS, &next), 0);
	assert_int_equal(w.tokens, 111 * MS);
	assert_int_equal(next, T0 + 10000 * MS + CPU_CAP_PERIOD_NS); /* a look each period */
}

static void test_gap(void **unused)
{
	(void)unused;
	/* a clock before the window (a new window) */
	struct cpu_cap_window v = {.start = T0 + 5000 * MS};
	int64_t next;
	assert_int_equal(cpu_cap_check(&v, 50, T0, 0, &next), 0);
	assert_int_equal(v.start, T0);
	/* at 100% nothing is ever spent */
	struct cpu_cap_window w = {0};
	assert_int_equal(cpu_cap_check(&w, 100, T0, 0, &next), 0);
	assert_int_equal(cpu_cap_check(&w, 100, T0 + 5000 * MS, 5000 * MS, &next), 0);
}

/* Uncapped for 5 s (no looks: the timer does not run at 100%), then capped at 30%: with the window
 * restarted the vCPU runs at once, its 5 s are not owed. */
static void test_restart(void **unused)
{
	(void)unused;
	struct cpu_cap_window w = {0};
	int64_t next;
	cpu_cap_check(&w, 50, T0, 0, &next);
	cpu_cap_restart(&w);
	assert_int_equal(cpu_cap_check(&w, 30, T0 + 5000 * MS, 5000 * MS, &next), 0);
	/* without the restart the 5 s would be debt (as much as may be owed): asleep */
	struct cpu_cap_window v = {0};
	cpu_cap_check(&v, 50, T0, 0, &next);
	assert_int_not_equal(cpu_cap_check(&v, 30, T0 + 5000 * MS, 5000 * MS, &next), 0);
}

/* A vCPU that spins whenever allowed; the timer looks when asked (at least every ms, as the
 * timer thread) and the vCPU notices a kick 0.2 ms late and wakes from its cap sleep `late` ns
 * late (a busy host).  Its share of 20 s must be the cap. */
static void share(unsigned percent, int64_t late)
{
	struct cpu_cap_window w = {0};
	int64_t now = T0, busy = 0, end = T0 + 20000 * MS, next;
	while (now < end) {
		int64_t until = cpu_cap_check(&w, percent, now, busy, &next);
		if (until) {
			now = until + late;
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
	print_message("cap %u%%, woken %lld ms late: %.2f%% busy\n", percent,
		      (long long)(late / MS), got);
	assert_true(got > percent - 1.0 && got < percent + 1.0);
}

static void test_share(void **unused)
{
	(void)unused;
	static const unsigned caps[] = {1, 10, 30, 50, 80};
	for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		share(caps[i], 0);
		share(caps[i], 5 * MS);
		/* up to CPU_CAP_LATE_NS late: no loss, the bucket kept filling */
		share(caps[i], 290 * MS);
	}
}

static void test_busy_kvm(void **unused)
{
	(void)unused;
	int64_t last = 0;
	assert_int_equal(cpu_cap_busy_kvm(10 * MS, 4 * MS, false, &last), 6 * MS);
	assert_int_equal(last, 6 * MS);
	/* halted now: the halt under way is not in the halted figure yet; busy stays */
	assert_int_equal(cpu_cap_busy_kvm(50 * MS, 4 * MS, true, &last), 6 * MS);
	/* the halt ended (44 ms of it), 2 ms busy since */
	assert_int_equal(cpu_cap_busy_kvm(52 * MS, 48 * MS, false, &last), 4 * MS);
}

/* A guest that computes 10 ms then halts 5 ms (its timer tick), over and over, under the cap with
 * busy counted from KVM's figures: the halted time is reported only when a halt ends, and the
 * timer looks at any time, also during a halt.  The guest's compute time must be the cap's share
 * of wall time (or all it wants, 2/3, when the cap is higher), and no halted vCPU is kicked. */
static void share_kvm(unsigned percent, double want)
{
	const int64_t dt = MS / 10, end = T0 + 20000 * MS;
	struct cpu_cap_window w = {0};
	int64_t now = T0, next_check = T0, sleep_until = T0, last = 0, next;
	int64_t active_ns = 0, active_since = 0, halted_ns = 0, halt_start = 0, computed = 0;
	int64_t compute_left = 10 * MS, halt_left = 0;
	bool active = false, blocking = false;
	unsigned halted_kicks = 0;
	for (; now < end; now += dt) {
		if (!active && now >= sleep_until) { /* the checkpoint */
			int64_t until = cpu_cap_check(
			    &w, percent, now, cpu_cap_busy_kvm(active_ns, halted_ns, false, &last),
			    &next);
			if (until)
				sleep_until = until;
			else {
				active = true;
				active_since = now;
			}
		}
		if (active && now >= next_check) { /* the timer thread */
			int64_t busy = cpu_cap_busy_kvm(active_ns + now - active_since, halted_ns,
							blocking, &last);
			int64_t until = cpu_cap_check(&w, percent, now, busy, &next);
			next_check = next > now + MS ? next : now + MS;
			if (until) { /* kick: out of KVM_RUN (a halt ends early), to the checkpoint
				      */
				if (blocking) {
					halted_kicks++;
					halted_ns += now - halt_start;
					blocking = false;
				}
				active_ns += now - active_since;
				active = false;
				sleep_until = now;
				continue;
			}
		}
		if (!active)
			continue;
		if (halt_left > 0) {
			if (!blocking) {
				blocking = true;
				halt_start = now;
			}
			if ((halt_left -= dt) <= 0) {
				halted_ns += now + dt - halt_start;
				blocking = false;
				compute_left = 10 * MS;
			}
		} else {
			computed += dt;
			if ((compute_left -= dt) <= 0)
				halt_left = 5 * MS;
		}
	}
	double got = 100.0 * computed / (end - T0);
	print_message("cap %u%%, busy from KVM: %.2f%% computing, %u halted kicks\n", percent, got,
		      halted_kicks);
	assert_true(got > want - 1.0 && got < want + 1.0);
	assert_int_equal(halted_kicks, 0);
}

static void test_share_kvm(void **unused)
{
	(void)unused;
	share_kvm(10, 10);
	share_kvm(30, 30);
	share_kvm(50, 50);
	share_kvm(80, 200.0 / 3); /* it wants only 2/3 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decisions), cmocka_unit_test(test_debt_and_no_credit),
	    cmocka_unit_test(test_gap),	      cmocka_unit_test(test_share),
	    cmocka_unit_test(test_restart),   cmocka_unit_test(test_busy_kvm),
	    cmocka_unit_test(test_share_kvm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
