# Guest helpers of the execution-cap tests (test_cpu_cap.sh, test_cpu_cap_cgroup.sh), sourced after
# guest-tests/lib/guest.sh and gt_setup.  They need $vm (the guest's name) and ctl (its control).

echo 0 >"$GT_WORK/seq"
# The value of a shell expression in the guest (a file counter: gq runs in $(...) subshells).
gq() {
	local seq
	seq=$(($(cat "$GT_WORK/seq") + 1))
	echo $seq >"$GT_WORK/seq"
	guest_send "$vm" "echo \"GT: q$seq=\$($1)\""
	guest_wait "$vm" "^GT: q$seq=" 600 >/dev/null
	guest_value "$vm" "q$seq"
}

# Seconds (guest clock) the guest takes for N iterations of a shell loop (no system calls).
work() {
	gq "a=\$(cut -d' ' -f1 /proc/uptime); i=0; while [ \$i -lt $1 ]; do i=\$((i+1)); done; b=\$(cut -d' ' -f1 /proc/uptime); echo \$a:\$b" |
		awk -F: '{ printf "%.2f\n", $2 - $1 }'
}

_cpu_now() { date +%s.%N; }

# cap_series PHASE_S SAMPLE_EVERY CAP...: the guest spins one shell loop for as many phases of
# PHASE_S seconds as caps are given, noting (uptime, iterations) every SAMPLE_EVERY iterations in its
# /tmp; the host sets each phase's cap at its start (`cpucap`; the first phase runs under the cap
# already set) and only sleeps in between, so nothing of the host's polls the console while the
# guest spins (in level 1 that would take CPU from the uncapped phases most).  Prints the guest's
# progress rate (iterations per guest second) in the middle of each phase, skipping half a second
# at each end (the cap change's latency), one per line.
cap_series() {
	local phase=$1 every=$2 n=$(($# - 2)) i=0 t0 seq now margin=0.5
	shift 2
	seq=$(($(cat "$GT_WORK/seq") + 1))
	echo $seq >"$GT_WORK/seq"
	local total=$((n * phase + 1))
	guest_send "$vm" "rm -f /tmp/p; read u0 r </proc/uptime; end=\$((\${u0%.*} + $total)); i=0; while :; do i=\$((i+1)); if [ \$((i % $every)) -eq 0 ]; then read u r </proc/uptime; echo \"\$u \$i\" >>/tmp/p; [ \${u%.*} -ge \$end ] && break; fi; done; echo \"GT: s$seq=\$u0\""
	t0=$(_cpu_now)
	for cap in "$@"; do
		if [ $i -gt 0 ]; then
			now=$(_cpu_now)
			sleep "$(awk -v t0="$t0" -v now="$now" -v at=$((i * phase)) 'BEGIN { d = t0 + at - now; printf "%.3f", (d > 0 ? d : 0) }')"
			ctl cpucap "$cap" >/dev/null
		fi
		i=$((i + 1))
	done
	guest_wait "$vm" "^GT: s$seq=" $((total + 600)) >/dev/null || return 1
	local u0 windows=""
	u0=$(guest_value "$vm" "s$seq")
	for ((i = 0; i < n; i++)); do
		windows+=$(awk -v u0="$u0" -v a=$((i * phase)) -v p="$phase" -v m=$margin \
			'BEGIN { printf "%.2f:%.2f ", u0 + a + m, u0 + a + p - m }')
	done
	# In the guest: each window's rate between the first and the last sample inside it.
	gq "awk -v w='$windows' 'BEGIN { n = split(w, x, \" \"); for (k = 1; k <= n; k++) { split(x[k], y, \":\"); a[k] = y[1]; b[k] = y[2] } } { for (k = 1; k <= n; k++) if (\$1 >= a[k] && \$1 <= b[k]) { if (!(k in u1)) { u1[k] = \$1; i1[k] = \$2 } u2[k] = \$1; i2[k] = \$2 } } END { s = \"\"; for (k = 1; k <= n; k++) s = s sprintf(\"%.0f,\", (u2[k] > u1[k]) ? (i2[k] - i1[k]) / (u2[k] - u1[k]) : 0); print s }' /tmp/p" |
		tr ',' '\n' | sed '/^$/d'
}

# cap_ratios CAP RATE... (the caps and rates of cap_series, as "cap rate" lines on stdin): for every
# phase capped at CAP, its rate in % of the mean of the uncapped (100) phases next to it; prints
# them, then their median on a line of its own.
cap_ratios() {
	awk -v want="$1" '{ c[NR] = $1; r[NR] = $2 }
		END {
			for (k = 1; k <= NR; k++) {
				if (c[k] != want) continue
				s = 0; m = 0
				if (k > 1 && c[k - 1] == 100) { s += r[k - 1]; m++ }
				if (k < NR && c[k + 1] == 100) { s += r[k + 1]; m++ }
				if (m && s > 0) v[++n] = 100 * r[k] / (s / m)
			}
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
			line = ""
			for (i = 1; i <= n; i++) line = line sprintf("%.1f ", v[i])
			print line
			if (n == 0) print 0
			else printf "%.1f\n", n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		}'
}
